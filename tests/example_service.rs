#![allow(clippy::unwrap_used)]
//! The release example's service and scripts: built with plain rustc like the pipeline does,
//! deployed, probed, redeployed as a bad release, and stopped without leaving a process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/release")
}

/// Builds the service into `dir` with the given build-time environment.
fn build_service(dir: &Path, name: &str, build_env: &[(&str, &str)]) -> PathBuf {
    let output_path = dir.join(name);
    let mut rustc = Command::new("rustc");
    rustc
        .arg("-O")
        .arg(example_dir().join("service/main.rs"))
        .arg("-o")
        .arg(&output_path);
    rustc
        .env_remove("PIPE_DEMO_BAD")
        .env_remove("SERVICE_VERSION")
        .envs(build_env.iter().copied());
    let output = rustc.output().unwrap();
    assert!(
        output.status.success(),
        "rustc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output_path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP GET; returns the status code and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn wait_until_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the service never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(port, "/health"), (200, "ok\n".to_string()));
}

fn metric(body: &str, name: &str) -> String {
    let line = body
        .lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

fn script(name: &str, args: &[&str], run_dir: &Path) -> Output {
    Command::new(example_dir().join("scripts").join(name))
        .args(args)
        .env("PIPE_EXAMPLE_RUN_DIR", run_dir)
        .env("PIPE_ENVIRONMENT", "test-env")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout_of(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Kills a directly started service when a test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_good_build_answers_health_version_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_service(dir.path(), "service", &[("SERVICE_VERSION", "api-1.2.3")]);
    let port = free_port();
    let child = Command::new(&binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = Running(child);
    wait_until_healthy(port);

    assert_eq!(get(port, "/version"), (200, "api-1.2.3\n".to_string()));
    for _ in 0..10 {
        assert_eq!(get(port, "/").0, 200);
    }
    assert_eq!(get(port, "/nowhere").0, 404);
    let (status, metrics) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(metric(&metrics, "requests"), "10", "{metrics}");
    assert_eq!(metric(&metrics, "error_rate"), "0.0%", "{metrics}");
    assert!(metric(&metrics, "p95").ends_with("ms"), "{metrics}");

    // SIGTERM ends it.
    let pid = service.0.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut service = service;
    let status = service.0.wait().unwrap();
    assert!(!status.success());
    assert!(!is_running(pid));
}

#[test]
fn a_bad_release_shows_in_the_error_rate_and_rolling_back_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = build_service(dir.path(), "good", &[("SERVICE_VERSION", "v1")]);
    let bad = build_service(
        dir.path(),
        "bad",
        &[("SERVICE_VERSION", "v2"), ("PIPE_DEMO_BAD", "1")],
    );
    let run_dir = dir.path().join("run");
    let url = format!("http://127.0.0.1:{}", free_port());
    let pid_file = run_dir.join("test-env/service.pid");

    let deployed = stdout_of(&script(
        "deploy.sh",
        &[bad.to_str().unwrap(), &url],
        &run_dir,
    ));
    assert!(deployed.contains("deployed v2 to test-env"), "{deployed}");
    let bad_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let error_rate = stdout_of(&script("error_rate.sh", &[&url], &run_dir));
    assert_eq!(error_rate, "50.0%\n");
    let p95 = stdout_of(&script("p95.sh", &[&url], &run_dir));
    assert!(
        p95.trim_end().ends_with("ms") && p95.lines().count() == 1,
        "{p95}"
    );

    // Rollback is a redeploy of the previous artifact: the bad instance is replaced.
    let redeployed = stdout_of(&script(
        "deploy.sh",
        &[good.to_str().unwrap(), &url],
        &run_dir,
    ));
    assert!(
        redeployed.contains("deployed v1 to test-env"),
        "{redeployed}"
    );
    assert!(!is_running(bad_pid), "the bad instance was stopped");
    let good_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        stdout_of(&script("error_rate.sh", &[&url], &run_dir)),
        "0.0%\n"
    );

    stdout_of(&script("stop.sh", &[], &run_dir));
    assert!(!is_running(good_pid), "no service is left running");
    let unanswered = script("error_rate.sh", &[&url], &run_dir);
    assert!(
        !unanswered.status.success(),
        "a probe of a stopped service fails"
    );
}
