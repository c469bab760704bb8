#![allow(clippy::unwrap_used)]
//! `pipe run` processes: the clean environment, secrets only where declared, working
//! directory, PIPE_TMP, timeouts that leave nothing behind, tool preflight, artifacts and log
//! file names — real processes through the real binary.

#[path = "support/run_harness.rs"]
mod harness;

use harness::{Project, alive, pid_from};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn processes_get_the_clean_environment_only() {
    let project = Project::new(
        r#"pipeline p {
             env { SHARED = "from-pipeline" }
             job show {
               env { OWN = "from-job" }
               inherit_env = ["PIPE_TEST_INHERITED"]
               run "env | sort > env.txt; pwd > pwd.txt"
             }
           }"#,
    );
    let run = project
        .command(&["run"])
        .env("PIPE_TEST_INHERITED", "yes")
        .env("PIPE_TEST_LEAK", "no")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let env = project.read("env.txt");
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    for expected in [
        "PATH",
        "SHARED",
        "OWN",
        "PIPE_TEST_INHERITED",
        "PIPE_RUN_ID",
        "PIPE_NODE",
        "PIPE_OUTPUT",
        "PIPE_TMP",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.contains(&"PIPE_TEST_LEAK"),
        "a host variable leaked: {names:?}"
    );
    let allowed = [
        "PATH",
        "HOME",
        "USER",
        "LANG",
        "LC_ALL",
        "TERM",
        "TMPDIR",
        "CI",
        "SHARED",
        "OWN",
        "PIPE_TEST_INHERITED",
        "PIPE_RUN_ID",
        "PIPE_NODE",
        "PIPE_OUTPUT",
        "PIPE_TMP",
        // Set by the shell itself.
        "PWD",
        "SHLVL",
        "OLDPWD",
        "_",
    ];
    let unexpected: Vec<&&str> = names.iter().filter(|n| !allowed.contains(n)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected variables: {unexpected:?}"
    );
    assert!(env.contains("PIPE_NODE=show"));
    let pwd = std::fs::canonicalize(project.read("pwd.txt").trim()).unwrap();
    assert_eq!(pwd, std::fs::canonicalize(project.path()).unwrap());
}

#[test]
fn only_items_that_declare_a_secret_can_read_it() {
    let project = Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_TOKEN") }
             job declared { secrets = [token]  run "test \"$TOKEN\" = tok-123456 && touch declared-saw-it" }
             job undeclared { run "echo \"${TOKEN:-unset}\" > undeclared.txt; env > undeclared-env.txt" }
           }"#,
    );
    let run = project
        .command(&["run"])
        .env("PIPE_TEST_TOKEN", "tok-123456")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert!(project.path().join("declared-saw-it").exists());
    assert_eq!(project.read("undeclared.txt").trim(), "unset");
    assert!(!project.read("undeclared-env.txt").contains("tok-123456"));
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let project = Project::new(
        r#"pipeline p {
             job hang {
               run "sleep 30 & echo $! > grandchild.pid; sleep 30"
               timeout = 1s
             }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    assert!(run.stdout().contains("timed out after 1s"), "{}", run.all());
    let grandchild = pid_from(&project, "grandchild.pid", Duration::from_secs(1)).unwrap();
    assert!(
        project.wait_for(Duration::from_secs(2), |_| !alive(grandchild)),
        "the background `sleep` (pid {grandchild}) survived the timeout"
    );
}

#[test]
fn a_finished_step_leaves_no_background_process_behind() {
    let project = Project::new(r#"pipeline p { job bg { run "sleep 30 & echo $! > bg.pid" } }"#);
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
    let pid = pid_from(&project, "bg.pid", Duration::from_secs(1)).unwrap();
    assert!(project.wait_for(Duration::from_secs(2), |_| !alive(pid)));
}

#[test]
fn pipe_tmp_is_fresh_and_removed_afterwards() {
    let project = Project::new(
        r#"pipeline p {
             job a { run "test -d $PIPE_TMP && test -z \"$(ls -A $PIPE_TMP)\" && echo $PIPE_TMP > tmp.txt" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let tmp = project.read("tmp.txt");
    assert!(!tmp.trim().is_empty());
    assert!(
        !std::path::Path::new(tmp.trim()).exists(),
        "{tmp} was not removed"
    );
}

#[test]
fn workdir_is_relative_to_the_pipeline_file() {
    let project = Project::new(r#"pipeline p { job a { workdir = "sub"  run "pwd > here.txt" } }"#);
    std::fs::create_dir(project.path().join("sub")).unwrap();
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert!(project.path().join("sub/here.txt").exists());
}

#[test]
fn missing_tools_are_reported_before_starting_with_their_location() {
    let project =
        Project::new("pipeline p {\n  job a {\n    run \"no-such-tool-xyz --version\"\n  }\n}\n");
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    let out = run.stdout();
    let warning = out
        .lines()
        .find(|l| l.contains("no-such-tool-xyz` is not on PATH"))
        .expect(&out);
    assert!(
        warning.contains("job `a`, step 1 at") && warning.contains("pipeline.pipe:3:"),
        "{warning}"
    );
    assert!(
        out.find(warning).unwrap() < out.find("[a] started").unwrap(),
        "{out}"
    );
}

#[test]
fn produced_artifacts_are_stored_read_only_with_metadata() {
    let project = Project::new(
        r#"pipeline p {
             artifact bin { path = "out/app" }
             artifact site { path = "public" }
             job build {
               run "mkdir -p out public/css && printf hello > out/app && echo body > public/index.html && echo a > public/css/x.css"
               produces = [bin, site]
             }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let state = project.latest_state();
    let digest = state["nodes"]["build"]["artifacts"]["bin"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        digest,
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let hex = digest.trim_start_matches("sha256:");
    let stored = project.state_dir().join("artifacts/sha256").join(hex);
    assert_eq!(std::fs::read(&stored).unwrap(), b"hello");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o222,
        0,
        "read-only"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stored.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(meta["digest"], digest.as_str());
    assert_eq!(meta["size"], 5);
    assert_eq!(meta["run_id"], project.runs()[0].as_str());
    let site = state["nodes"]["build"]["artifacts"]["site"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let copy = project
        .state_dir()
        .join("artifacts/sha256")
        .join(site)
        .join("css/x.css");
    assert_eq!(std::fs::read_to_string(copy).unwrap(), "a\n");
    let audit = std::fs::read_to_string(project.state_dir().join("audit.jsonl")).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("\"artifact_stored\""))
            .count(),
        2,
        "{audit}"
    );
}

#[test]
fn a_missing_artifact_path_fails_the_producing_job() {
    let project = Project::new(
        r#"pipeline p { artifact bin { path = "nothing-here" }  job build { run "true"  produces = [bin] } }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    let message = project.latest_state()["nodes"]["build"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("artifact `bin`") && message.contains("nothing-here"),
        "{message}"
    );
}

#[test]
fn matrix_node_ids_make_safe_log_file_names() {
    let project = Project::new(
        r#"pipeline p {
             job test { matrix { os = ["linux", "mac"] }  run "echo on ${{ matrix.os }}" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let run_id = project.runs()[0].clone();
    let logs: Vec<String> =
        std::fs::read_dir(project.state_dir().join("runs").join(run_id).join("logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for log in &logs {
        assert!(log.starts_with("test-") && log.ends_with(".log"), "{log}");
        assert!(!log.contains('[') && !log.contains(','), "{log}");
    }
    assert!(
        run.stdout().contains("[test[linux]] on linux"),
        "{}",
        run.all()
    );
}
