//! Shared helpers of the runner's integration tests: a pipeline in its own temporary
//! directory, the real `pipe` binary, and looks into `.pipe/` and `/proc`.

#![allow(dead_code)]

#[path = "state_backend.rs"]
pub mod state_backend;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Project {
    pub dir: tempfile::TempDir,
    /// `PIPE_STATE` of every command: `None` keeps `.pipe` beside the pipeline
    /// (`PIPE_TEST_STATE` picks the backend, `state_backend`).
    pub state: Option<String>,
}

impl Project {
    /// A temporary directory holding `pipeline.pipe` with `source`.
    pub fn new(source: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pipeline.pipe"), source).unwrap();
        Project {
            dir,
            state: state_backend::fresh_state(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, content: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// `pipe ARGS` in the project directory, without a terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("PIPE_APPROVER")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        match &self.state {
            Some(url) => command.env("PIPE_STATE", url),
            None => command.env_remove("PIPE_STATE"),
        };
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let output = self.command(args).output().unwrap();
        Run {
            output,
            elapsed: started.elapsed(),
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join(".pipe")
    }

    /// Run ids, oldest first.
    pub fn runs(&self) -> Vec<String> {
        if self.state.is_some() {
            return self.runs_listed();
        }
        let mut runs: Vec<String> = std::fs::read_dir(self.state_dir().join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        runs.sort();
        runs
    }

    /// A run's stored state: its `state.json`, or on a shared backend the same document
    /// read back from the server.
    pub fn state(&self, run: &str) -> serde_json::Value {
        if let Some(url) = &self.state {
            return state_backend::run_state(url, run);
        }
        let path = self.state_dir().join("runs").join(run).join("state.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
    }

    pub fn latest_state(&self) -> serde_json::Value {
        match self.runs().last() {
            Some(run) => self.state(run),
            None => serde_json::Value::Null,
        }
    }

    pub fn node_status(&self, node: &str) -> String {
        self.latest_state()["nodes"][node]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Every file under `.pipe/` with its bytes.
    pub fn state_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        collect_files(&self.state_dir(), &mut files);
        files
    }

    /// Waits until `condition` holds, up to `limit`.
    pub fn wait_for(&self, limit: Duration, condition: impl Fn(&Project) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if condition(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Project {
    /// What `pipe runs` lists, oldest first: the run ids of any backend.
    fn runs_listed(&self) -> Vec<String> {
        let run = self.run(&["runs", "--format", "json"]);
        assert_eq!(run.code(), 0, "pipe runs: {}", run.all());
        let listed: serde_json::Value = serde_json::from_slice(&run.output.stdout).unwrap();
        let mut runs: Vec<String> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        runs.sort();
        runs
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

pub struct Run {
    pub output: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Both streams, for messages on failure.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }
}

/// Whether a process is alive (a zombie is not: it has finished, only not yet reaped).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits up to `limit` for a pid written to `file` in the project.
pub fn pid_from(project: &Project, file: &str, limit: Duration) -> Option<i32> {
    let pid = std::cell::Cell::new(None);
    project.wait_for(limit, |p| {
        pid.set(p.read(file).trim().parse().ok());
        pid.get().is_some()
    });
    pid.get()
}
