//! Shared by the `deliver_*` integration tests: a temporary project whose "service" is a
//! directory per environment. `deploy.sh` copies the release file into `ENVDIR/current`; the
//! release file's own lines decide how it behaves (`error_rate=5%`, `smoke=fail`,
//! `error_rate_seq=5%,5%,0%`), so a test makes a release bad by what it builds.

#![allow(dead_code, clippy::unwrap_used)]

#[path = "../support/state_backend.rs"]
pub mod state_backend;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DEPLOY: &str = r#"#!/bin/sh
set -eu
artifact=$1; envdir=$2
mkdir -p "$envdir"
echo "deploying with token $TOKEN weight ${PIPE_ROLLOUT_WEIGHT:-none}"
if grep -q '^deploy=slow' "$artifact"; then sleep 3; fi
if grep -q '^deploy=fail' "$artifact"; then echo "deploy failed" >&2; exit 1; fi
cp "$artifact" "$envdir/current.new" && mv -f "$envdir/current.new" "$envdir/current"
rm -f "$envdir/probe_count"
echo "$PIPE_ENVIRONMENT $PIPE_ARTIFACT prev=$PIPE_PREVIOUS_ARTIFACT" >> "$envdir/deploys"
"#;

pub const SMOKE: &str = r#"#!/bin/sh
set -eu
envdir=$1
echo "smoke with $TOKEN" >&2
test -f "$envdir/current"
! grep -q '^smoke=fail' "$envdir/current"
"#;

/// Prints the release's error rate; `error_rate_seq=a,b,c` gives a, then b, then c (repeating
/// the last); `error_rate=garbage` is unreadable.
pub const ERROR_RATE: &str = r#"#!/bin/sh
set -eu
envdir=$1
echo "probe sees $TOKEN" >&2
count=$(cat "$envdir/probe_count" 2>/dev/null || echo 0)
echo $((count + 1)) > "$envdir/probe_count"
seq=$(sed -n 's/^error_rate_seq=//p' "$envdir/current")
if [ -n "$seq" ]; then
  echo "$seq" | tr ',' '\n' | awk -v n="$count" 'NR <= n + 1 { v = $0 } END { print v }'
  exit 0
fi
sed -n 's/^error_rate=//p' "$envdir/current"
"#;

pub const PIPELINE: &str = r#"
pipeline svc {
  version = "${{ run.id }}"

  secret token { from = env("SVC_TOKEN") }

  artifact app { path = "build/app.txt" }

  environment staging    { url = "ENVS/staging" }
  environment production { url = "ENVS/production"  protected = true }

  job build {
    run "mkdir -p build && printf '%s\n' \"$RELEASE\" | tr ';' '\n' > build/app.txt"
    inherit_env = ["RELEASE"]
    produces    = [app]
  }

  promote staging {
    after    = [build]
    artifact = app
    secrets  = [token]
    deploy   { run "sh ./deploy.sh ${{ artifact.path }} ${{ env.url }}" }
    smoke    { run "sh ./smoke.sh ${{ env.url }}" }
    watch WATCH {
      probe error_rate: percent = command("sh ./error_rate.sh ${{ env.url }}") every 200ms
      rollback when error_rate > 1% FOR
      warn when error_rate > 0.1%
    }
    rollback { ROLLBACK }
  }

  promote production {
    after    = [staging]
    artifact = app
    secrets  = [token]
    approval { approvers = ["alice", "bob"] }
    rollout canary { steps = [50%, 100%]  pause = 200ms }
    deploy   { run "sh ./deploy.sh ${{ artifact.path }} ${{ env.url }}" }
    smoke    { run "sh ./smoke.sh ${{ env.url }}" }
    rollback { run "sh ./deploy.sh ${{ previous.path }} ${{ env.url }}" }
  }
}
"#;

pub const SECRET: &str = "s3cr3t-Tok3n-value-42";

pub struct Project {
    pub dir: tempfile::TempDir,
    /// `PIPE_STATE` of every command: `None` keeps `.pipe` beside the pipeline
    /// (`PIPE_TEST_STATE` picks the backend, `state_backend`).
    pub state: Option<String>,
}

impl Project {
    /// A project with the default watch (2s, rule `for 1s`) and rollback.
    pub fn new() -> Project {
        Project::with(
            "2s",
            "for 1s",
            "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"",
        )
    }

    pub fn with(watch: &str, window: &str, rollback: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let envs = root.join("envs");
        let pipeline = PIPELINE
            .replace("ENVS", &envs.display().to_string())
            .replace("WATCH", watch)
            .replace("FOR", window)
            .replace("ROLLBACK", rollback);
        std::fs::write(root.join("pipeline.pipe"), pipeline).unwrap();
        std::fs::write(root.join("deploy.sh"), DEPLOY).unwrap();
        std::fs::write(root.join("smoke.sh"), SMOKE).unwrap();
        std::fs::write(root.join("error_rate.sh"), ERROR_RATE).unwrap();
        Project {
            dir,
            state: state_backend::fresh_state(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn env_dir(&self, environment: &str) -> PathBuf {
        self.root().join("envs").join(environment)
    }

    /// The release file the environment currently serves.
    pub fn serving(&self, environment: &str) -> String {
        std::fs::read_to_string(self.env_dir(environment).join("current")).unwrap_or_default()
    }

    pub fn command(&self, release: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
        command
            .args(args)
            .current_dir(self.root())
            .env("RELEASE", release)
            .env("SVC_TOKEN", SECRET)
            .env("USER", "carol")
            .env("NO_COLOR", "1")
            .env_remove("PIPE_APPROVER");
        match &self.state {
            Some(url) => command.env("PIPE_STATE", url),
            None => command.env_remove("PIPE_STATE"),
        };
        command
    }

    /// `pipe ARGS` with `RELEASE` (lines separated by `;`) as what the build job writes.
    pub fn pipe(&self, release: &str, args: &[&str]) -> Output {
        self.command(release, args).output().unwrap()
    }

    /// A run that promotes staging and production (approved by alice).
    pub fn release(&self, release: &str) -> Output {
        self.pipe(
            release,
            &["run", "--approve", "production", "--approver", "alice"],
        )
    }

    /// The environment's ledger: the file, or on a shared backend what `pipe releases` reads.
    pub fn ledger(&self, environment: &str) -> serde_json::Value {
        if self.state.is_some() {
            // `pipe releases` lists newest first; the ledger keeps them oldest first.
            let mut releases = self.json(&["releases", environment, "--format", "json"]);
            if let Some(list) = releases.as_array_mut() {
                list.reverse();
            }
            return serde_json::json!({ "releases": releases });
        }
        let path = self
            .root()
            .join(format!(".pipe/ledger/svc/{environment}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The JSON a read-only `pipe` command prints; panics with its output when it fails.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.pipe("unused", args);
        assert!(output.status.success(), "pipe {args:?}: {}", text(&output));
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("pipe {args:?} printed no JSON ({e}): {}", text(&output)))
    }

    /// `(version-ish release line, status)` of each release, oldest first.
    pub fn statuses(&self, environment: &str) -> Vec<String> {
        self.ledger(environment)["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        if self.state.is_some() {
            let records = self.json(&["audit", "show", "--format", "json"]);
            return records.as_array().cloned().unwrap_or_default();
        }
        let text = std::fs::read_to_string(self.root().join(".pipe/audit.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn has_event(&self, event: &str) -> bool {
        self.audit_events().iter().any(|e| e["event"] == event)
    }
}

pub fn text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub const GOOD: &str = "name=good;error_rate=0%";
pub const GOOD2: &str = "name=good2;error_rate=0.5%";

/// Waits until no process works in `root` (or below it) any more: the steps a `kill -9`ed
/// runner left behind must be killed by its supervisor, not by the test. Survivors after the
/// supervisor's grace period fail the test (and are killed, so they cannot disturb others).
pub fn await_orphans_gone(root: &Path) {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let working_here = processes_under(&root);
        if working_here.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            for pid in &working_here {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!(
                "processes under {} outlived their killed runner: {working_here:?}",
                root.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Live (not zombie) processes whose working directory is `root` or below it.
fn processes_under(root: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(root))
        })
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z") | None)
        })
        .collect()
}
