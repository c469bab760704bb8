#![allow(clippy::unwrap_used)]
//! Run state, resume, interrupts and dry runs: `kill -9` leaves a resumable run, SIGINT stops
//! cleanly with exit 130, a dry run creates nothing.

#[path = "support/run_harness.rs"]
mod harness;

use harness::{Project, alive, pid_from};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::Duration;

#[test]
fn dry_run_prints_the_plan_and_creates_nothing() {
    let project = Project::new(
        r#"pipeline p {
             version = "v-${{ pipeline.name }}"
             secret token { from = env("PIPE_TEST_DRY_SECRET") }
             job build { run "echo building ${{ pipeline.version }}"  env { MODE = "fast" } }
             job test {
               needs = [build]
               secrets = [token]
               run "touch ran"
               outputs { coverage: percent }
             }
             job release { needs = [test]  when = git.branch == "main"  run "touch released" }
             gate quality { after = [test]  require jobs.test.outputs.coverage >= 80% }
           }"#,
    );
    let run = project
        .command(&["run", "--dry-run"])
        .env("PIPE_TEST_DRY_SECRET", "abc")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("$ echo building v-p"), "{out}");
    assert!(out.contains("env MODE=fast"), "{out}");
    assert!(out.contains("secret TOKEN=***"), "{out}");
    assert!(
        out.contains(
            "require jobs.test.outputs.coverage >= 80%   (reads jobs.test.outputs.coverage)"
        ),
        "{out}"
    );
    assert!(
        out.contains("would skip: when `git.branch == \"main\"` is false"),
        "{out}"
    );
    let build = out.find("job build").unwrap();
    let test = out.find("job test").unwrap();
    assert!(build < test, "{out}");
    assert!(
        !project.state_dir().exists(),
        ".pipe was created by a dry run"
    );
    assert!(!project.path().join("ran").exists());
}

#[test]
fn resume_after_kill_9_does_not_rerun_finished_nodes() {
    let project = Project::new(
        r#"pipeline p {
             job quick { run "echo x >> quick-count" }
             job slow { run "echo $$ > slow.pid; if [ -f slow ]; then sleep 30; fi; echo x >> slow-count" }
             job last { needs = [quick, slow]  run "echo x >> last-count" }
           }"#,
    );
    project.write("slow", "");
    let mut child = project.spawn(&["run", "--jobs", "2"]);
    let slow_pid = pid_from(&project, "slow.pid", Duration::from_secs(5)).unwrap();
    assert!(
        project.wait_for(Duration::from_secs(5), |p| p.node_status("quick")
            == "succeeded")
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // `pipe` died without cleaning up: end its orphaned step ourselves.
    let _ = nix::sys::signal::killpg(Pid::from_raw(slow_pid), Signal::SIGKILL);
    std::fs::remove_file(project.path().join("slow")).unwrap();
    let run_id = project.runs()[0].clone();
    assert_eq!(project.node_status("slow"), "running");

    let resumed = project.run(&["resume", &run_id]);
    assert_eq!(resumed.code(), 0, "{}", resumed.all());
    assert_eq!(
        project.read("quick-count").lines().count(),
        1,
        "quick ran again"
    );
    assert_eq!(project.read("slow-count").lines().count(), 1);
    assert_eq!(project.read("last-count").lines().count(), 1);
    assert_eq!(project.runs().len(), 1, "resume continues the same run");
    assert_eq!(project.state(&run_id)["status"], "succeeded");
}

#[test]
fn sigint_stops_children_saves_state_and_exits_130() {
    let project = Project::new(
        r#"pipeline p {
             job hang { run "sleep 30 & echo $! > bg.pid; echo $$ > fg.pid; sleep 30" }
             job after { needs = [hang]  run "touch after-ran" }
           }"#,
    );
    let mut child = project.spawn(&["run"]);
    let background = pid_from(&project, "bg.pid", Duration::from_secs(5)).unwrap();
    let foreground = pid_from(&project, "fg.pid", Duration::from_secs(5)).unwrap();
    let started = std::time::Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    for pid in [background, foreground] {
        assert!(
            project.wait_for(Duration::from_secs(2), |_| !alive(pid)),
            "pid {pid} survived"
        );
    }
    let state = project.latest_state();
    assert_eq!(state["status"], "interrupted");
    assert_eq!(state["nodes"]["hang"]["status"], "interrupted");
    assert_eq!(state["nodes"]["after"]["status"], "pending");
    assert!(!project.path().join("after-ran").exists());
}

#[test]
fn a_second_sigint_kills_at_once() {
    let project = Project::new(
        r#"pipeline p { job stubborn { run "trap '' TERM; echo $$ > pid; while true; do sleep 0.1; done" } }"#,
    );
    let mut child = project.spawn(&["run"]);
    let pid = pid_from(&project, "pid", Duration::from_secs(5)).unwrap();
    let started = std::time::Instant::now();
    let pipe = Pid::from_raw(child.id() as i32);
    kill(pipe, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    kill(pipe, Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        project.wait_for(Duration::from_secs(2), |_| !alive(pid)),
        "pid {pid} survived"
    );
}

#[test]
fn resume_warns_when_the_source_changed_and_rejects_unknown_runs() {
    let project = Project::new(r#"pipeline p { job a { run "exit 1" } }"#);
    assert_eq!(project.run(&["run"]).code(), 1);
    let run_id = project.runs()[0].clone();
    project.write("pipeline.pipe", r#"pipeline p { job a { run "true" } }"#);
    let refused = project.run(&["resume", &run_id]);
    assert_eq!(
        refused.code(),
        2,
        "a changed source refuses: {}",
        refused.all()
    );
    assert!(refused.stderr().contains("--force"), "{}", refused.all());
    let resumed = project.run(&["resume", &run_id, "--force"]);
    assert_eq!(
        resumed.code(),
        1,
        "the stored plan still fails: {}",
        resumed.all()
    );
    assert!(
        resumed.stdout().contains("changed since run"),
        "{}",
        resumed.all()
    );
    let unknown = project.run(&["resume", "no-such-run"]);
    assert_eq!(unknown.code(), 2);
    assert!(unknown.stderr().contains(&run_id), "{}", unknown.all());
}

#[test]
fn a_compiled_plan_runs_like_its_source() {
    let project = Project::new(r#"pipeline p { job a { run "echo hi > hi.txt" } }"#);
    let compiled = project.run(&["compile", "-o", "plan.json"]);
    assert_eq!(compiled.code(), 0, "{}", compiled.all());
    let run = project.run(&["run", "plan.json"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(project.read("hi.txt"), "hi\n");
    let broken = Project::new("pipeline p { job a { run } }");
    assert_eq!(broken.run(&["run"]).code(), 2);
}

#[test]
fn a_run_killed_before_its_first_state_write_can_be_resumed() {
    let project = Project::new(r#"pipeline p { job a { run "echo x >> count" } }"#);
    assert_eq!(project.run(&["run"]).code(), 0);
    let run_id = project.runs()[0].clone();
    let state = project
        .state_dir()
        .join("runs")
        .join(&run_id)
        .join("state.json");
    std::fs::remove_file(state).unwrap();
    let resumed = project.run(&["resume", &run_id]);
    assert_eq!(resumed.code(), 0, "{}", resumed.all());
    assert_eq!(
        project.read("count").lines().count(),
        2,
        "nothing had been recorded as done"
    );
    assert_eq!(project.state(&run_id)["status"], "succeeded");
}

/// `artifact.path` names the stored copy by an absolute path in a resumed run as in the first,
/// so a deploy script that changes directory still finds it.
#[test]
fn artifact_paths_are_absolute_after_a_resume() {
    let project = Project::new(
        r#"pipeline p {
             artifact app { path = "app.txt" }
             environment staging { url = "local" }
             job build {
               run "echo v1 > app.txt"
               produces = [app]
             }
             job flaky {
               needs = [build]
               run "test -f ok"
             }
             promote staging {
               after    = [flaky]
               artifact = app
               deploy   { run "printf '%s' ${{ artifact.path }} > deployed-path" }
               smoke    { run "true" }
               rollback { run "true" }
             }
           }"#,
    );
    let first = project.run(&["run"]);
    assert_eq!(first.code(), 1, "{}", first.all());
    let run_id = project.runs()[0].clone();
    project.write("ok", "");
    let resumed = project.run(&["resume", &run_id]);
    assert_eq!(resumed.code(), 0, "{}", resumed.all());
    let deployed = project.read("deployed-path");
    assert!(
        std::path::Path::new(&deployed).is_absolute(),
        "artifact.path was {deployed:?}"
    );
    assert_eq!(std::fs::read_to_string(&deployed).unwrap(), "v1\n");
}
