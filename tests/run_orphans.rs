#![allow(clippy::unwrap_used)]
//! No orphan deploys: a runner killed by `kill -9` takes its steps with it, a resume does not
//! deploy while the killed deploy still runs, and `pipe` as PID 1 reaps what its steps leave.

#[path = "support/run_harness.rs"]
mod harness;

use harness::{Project, alive, pid_from};
use std::time::{Duration, Instant};

/// A deploy that announces its pid, notes any earlier deploy still alive (an overlap), sleeps
/// as long as `sleep_seconds` says and only then marks itself done.
const PIPELINE: &str = r#"pipeline svc {
  artifact app { path = "app.txt" }
  environment staging { url = "local" }
  job build {
    run "echo v1 > app.txt"
    produces = [app]
  }
  promote staging {
    after    = [build]
    artifact = app
    deploy   { run "sh ./deploy.sh" }
    rollback { run "true" }
  }
}
"#;

const DEPLOY: &str = r#"for p in $(cat pids 2>/dev/null); do
  if [ -r /proc/$p/stat ] && ! grep -q ') Z' /proc/$p/stat; then echo "$p" >> overlaps; fi
done
echo $$ >> pids
sleep "$(cat sleep_seconds)"
touch "done.$$"
"#;

/// Whether any live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

#[test]
fn a_killed_runner_takes_its_deploy_with_it_and_resume_does_not_overlap() {
    let project = Project::new(PIPELINE);
    project.write("deploy.sh", DEPLOY);
    project.write("sleep_seconds", "5");
    let mut runner = project.spawn(&["run"]);
    let deploy = pid_from(&project, "pids", Duration::from_secs(30)).expect("the deploy started");
    runner.kill().unwrap();
    let killed = Instant::now();
    runner.wait().unwrap();
    project.write("sleep_seconds", "0");
    let resume = project.spawn(&["resume", &project.runs()[0]]);
    while group_alive(deploy) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "the deploy's process group outlived its runner by {:?}",
        killed.elapsed()
    );
    assert!(!alive(deploy));
    let output = resume.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{all}");
    let remaining = Duration::from_millis(5500).saturating_sub(killed.elapsed());
    std::thread::sleep(remaining);
    assert!(
        !project.path().join(format!("done.{deploy}")).exists(),
        "the killed deploy finished anyway"
    );
    assert_eq!(project.read("overlaps"), "", "two deploys overlapped");
    assert_eq!(
        project.read("pids").lines().count(),
        2,
        "the resume deployed"
    );
}

#[test]
fn as_pid_1_a_step_background_child_is_reaped_at_once() {
    let project = Project::new(
        r#"pipeline p {
             job bg { run "sleep 0.1 & echo x" }
           }"#,
    );
    let started = Instant::now();
    let output = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_pipe"))
        .arg("run")
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("[bg] x"), "{all}");
    assert!(
        elapsed < Duration::from_secs(3),
        "took {elapsed:?} (the kill grace is 10 s)"
    );
}
