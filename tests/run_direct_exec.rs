#![allow(clippy::unwrap_used)]
//! A command of plain words runs without `/bin/sh`, and nothing observable changes: the same
//! environment, exit codes, `PATH` lookup, relative programs, and the shell's own report of a
//! missing program.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;

fn log(project: &Project, node: &str) -> String {
    let run = project.runs().last().cloned().unwrap();
    let path = format!(".pipe/runs/{run}/logs/{node}.log");
    project.read(&path)
}

/// `NAME=value` lines of a log, without the per-job variables.
fn variables(log: &str) -> Vec<String> {
    let mut lines: Vec<String> = log
        .lines()
        .filter(|line| line.contains('=') && !line.starts_with('$'))
        .filter(|line| {
            !["PIPE_NODE=", "PIPE_TMP=", "PIPE_OUTPUT="]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_direct_command_sees_the_environment_the_shell_would_give_it() {
    let project = Project::new(
        r#"pipeline p {
             env { GREETING = "hello" }
             job direct { run "env" }
             job shell { run "env;" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let direct = variables(&log(&project, "direct"));
    assert!(direct.iter().any(|l| l == "GREETING=hello"), "{direct:?}");
    assert!(direct.iter().any(|l| l.starts_with("PWD=")), "{direct:?}");
    assert_eq!(direct, variables(&log(&project, "shell")));
}

#[test]
fn exit_codes_and_a_missing_program_read_as_from_the_shell() {
    let project = Project::new(
        r#"pipeline p {
             job fails { run "false" }
             job missing { run "no-such-program-for-pipe arg" }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    let state = project.latest_state();
    assert_eq!(state["nodes"]["fails"]["exit_code"], 1);
    assert_eq!(state["nodes"]["missing"]["exit_code"], 127);
    let missing = log(&project, "missing");
    assert!(
        missing.contains("no-such-program-for-pipe: not found"),
        "{missing}"
    );
    let message = state["nodes"]["missing"]["message"].as_str().unwrap();
    assert!(message.contains("exited 127"), "{message}");
}

#[test]
fn a_relative_program_runs_from_the_job_directory_with_its_arguments() {
    let project =
        Project::new(r#"pipeline p { job a { workdir = "sub"  run "./tool.sh one two" } }"#);
    project.write(
        "sub/tool.sh",
        "#!/bin/sh\necho \"$# $1 $2 $(pwd)\" > args.txt\n",
    );
    use std::os::unix::fs::PermissionsExt;
    let tool = project.path().join("sub/tool.sh");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let sub = project.path().join("sub").canonicalize().unwrap();
    assert_eq!(
        project.read("sub/args.txt").trim(),
        format!("2 one two {}", sub.display())
    );
}
