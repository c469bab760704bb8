#![allow(clippy::unwrap_used)]
//! Redaction end to end: a secret printed whole, split across two writes, on stderr, and
//! written as an output never reaches the console or any file under `.pipe/`.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;

const SECRET: &str = "Zq8-very-secret-value-77";

fn assert_nowhere(project: &Project, console: &str) {
    assert!(
        !console.contains(SECRET),
        "secret on the console:\n{console}"
    );
    assert!(
        !console.contains("very-secret"),
        "part of the secret on the console:\n{console}"
    );
    for (path, bytes) in project.state_files() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(SECRET),
            "secret in {}:\n{text}",
            path.display()
        );
        assert!(
            !text.contains("very-secret"),
            "part of the secret in {}",
            path.display()
        );
    }
}

fn console_of(run: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    )
}

fn leaky_project() -> Project {
    Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_SECRET") }
             job leak {
               secrets = [token]
               outputs { note: string }
               run "echo whole: $TOKEN"
               run "printf 'split: Zq8-very-'; sleep 0.2; printf 'secret-value-77 done\n'"
               run "echo on stderr $TOKEN >&2"
               run "echo note=the token is $TOKEN >> $PIPE_OUTPUT"
             }
             job fail {
               secrets = [token]
               run "echo failing with $TOKEN; exit 4"
             }
           }"#,
    )
}

#[test]
fn secrets_never_reach_console_logs_state_or_outputs() {
    let project = leaky_project();
    let run = project
        .command(&["run"])
        .env("PIPE_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let console = console_of(&run);
    assert_eq!(run.status.code(), Some(1), "{console}");
    assert!(console.contains("[leak] whole: ***"), "{console}");
    assert!(console.contains("[leak] split: *** done"), "{console}");
    assert!(console.contains("[leak] on stderr ***"), "{console}");
    assert!(console.contains("[fail] failing with ***"), "{console}");
    let state = project.latest_state();
    assert_eq!(
        state["nodes"]["leak"]["outputs"]["note"]["value"],
        "the token is ***"
    );
    let run_id = project.runs()[0].clone();
    let log = project.read(&format!(".pipe/runs/{run_id}/logs/leak.log"));
    assert!(log.contains("split: *** done"), "{log}");
    assert_nowhere(&project, &console);
}

#[test]
fn json_events_are_redacted_too() {
    let project = leaky_project();
    let run = project
        .command(&["run", "--log-format", "json"])
        .env("PIPE_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(console.contains("split: *** done"), "{console}");
    assert_nowhere(&project, &console);
}

#[test]
fn a_secret_split_between_stdout_and_stderr_never_reaches_a_log() {
    const JOBS: usize = 32;
    let jobs: String = (0..JOBS)
        .map(|i| format!("job split{i} {{ secrets = [token] run \"sh ./split.sh\" }}\n"))
        .collect();
    let project = Project::new(&format!(
        "pipeline p {{\n secret token {{ from = env(\"PIPE_TEST_SECRET\") }}\n{jobs}}}\n"
    ));
    // The first three bytes on stdout without a newline, the rest on stderr.
    project.write(
        "split.sh",
        "rest=${TOKEN#???}\nprintf 'x:%s' \"${TOKEN%\"$rest\"}\"\nprintf '%s\\n' \"$rest\" >&2\n",
    );
    let run = project
        .command(&["run", "--jobs", "8"])
        .env("PIPE_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let console = console_of(&run);
    assert_eq!(run.status.code(), Some(0), "{console}");
    assert!(
        !console.contains(SECRET),
        "secret on the console:\n{console}"
    );
    let run_id = project.runs()[0].clone();
    for i in 0..JOBS {
        let log = project.read(&format!(".pipe/runs/{run_id}/logs/split{i}.log"));
        assert!(log.contains("x:"), "split{i}.log holds the output: {log}");
        assert!(!log.contains(SECRET), "secret in split{i}.log: {log}");
    }
}

/// A job that uses no secret, in a pipeline that declares one, prints a line and then waits:
/// the line reaches its log and the plain console at once, not when the job next prints.
#[test]
fn a_line_followed_by_silence_reaches_the_log_and_console_at_once() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let project = Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_SECRET") }
             job quiet { run "echo waiting for db...; touch printed; sleep 2" }
             job uses { secrets = [token]  run "true" }
           }"#,
    );
    let mut child = project
        .command(&["run", "--jobs", "2"])
        .env("PIPE_TEST_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (seen, on_console) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("waiting for db...") {
                let _ = seen.send(Instant::now());
            }
        }
    });
    assert!(project.wait_for(Duration::from_secs(10), |p| {
        p.path().join("printed").exists()
    }));
    let printed = Instant::now();
    let in_log = |p: &Project| {
        p.runs().first().is_some_and(|run| {
            let log = p.state_dir().join("runs").join(run).join("logs/quiet.log");
            std::fs::read_to_string(log).is_ok_and(|text| text.contains("waiting for db...\n"))
        })
    };
    assert!(
        project.wait_for(Duration::from_millis(200), in_log),
        "the line was held back from the log while the job slept"
    );
    let shown = on_console.recv_timeout(Duration::from_millis(200));
    assert!(
        shown.is_ok(),
        "the line was held back from the console while the job slept"
    );
    assert!(
        printed.elapsed() < Duration::from_millis(1500),
        "the job had already finished"
    );
    assert!(child.wait().unwrap().success());
}
