//! The release example end to end through the real binary: a good release to staging and
//! production, then a bad one that staging's watch catches and rolls back, measuring recovery
//! (first moment the bad version answers → first moment the previous version answers again).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A copy of `examples/release` whose environments listen on free ports.
fn example_copy() -> (tempfile::TempDir, u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/release");
    for sub in ["scripts", "service"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(source.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            let target = dir.path().join(sub).join(path.file_name().unwrap());
            std::fs::copy(&path, target).unwrap();
        }
    }
    let (staging, production) = (free_port(), free_port());
    let pipeline = std::fs::read_to_string(source.join("pipeline.pipe"))
        .unwrap()
        .replace("127.0.0.1:18080", &format!("127.0.0.1:{staging}"))
        .replace("127.0.0.1:18081", &format!("127.0.0.1:{production}"));
    std::fs::write(dir.path().join("pipeline.pipe"), pipeline).unwrap();
    (dir, staging, production)
}

fn pipe(dir: &Path, bad: bool, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
    command
        .args(args)
        .current_dir(dir)
        .env("USER", "carol")
        .env("NO_COLOR", "1");
    if bad {
        command.env("PIPE_DEMO_BAD", "1");
    } else {
        command.env_remove("PIPE_DEMO_BAD");
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn version(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    write!(
        stream,
        "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let body = answer.split("\r\n\r\n").nth(1)?.trim().to_string();
    Some(body).filter(|b| !b.is_empty())
}

/// Stops the example's services however the test ends.
struct Services(PathBuf);

impl Drop for Services {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(self.0.join("scripts/stop.sh"))
            .output();
    }
}

/// Polls `/version` every 20ms and notes when each version was first seen answering.
fn watch_versions(
    port: u16,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, String)>> {
    let seen = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(current) = version(port) {
                let mut seen = seen.lock().unwrap();
                if seen.last().is_none_or(|(_, last)| *last != current) {
                    seen.push((Instant::now(), current));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen.lock().unwrap().clone()
    })
}

#[test]
fn a_bad_release_of_the_example_is_rolled_back_and_the_good_version_serves_again() {
    let (dir, staging, production) = example_copy();
    let _services = Services(dir.path().to_path_buf());
    let good = pipe(
        dir.path(),
        false,
        &["run", "--approve", "production", "--approver", "alice"],
    );
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    let good_version = version(staging).unwrap();
    assert_eq!(version(production).unwrap(), good_version);

    let stop = Arc::new(AtomicBool::new(false));
    let poller = watch_versions(staging, stop.clone());
    let bad = pipe(
        dir.path(),
        true,
        &["run", "--approve", "production", "--approver", "alice"],
    );
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("rollback when error_rate > 5%"),
        "{}",
        text(&bad)
    );
    assert_eq!(
        version(staging).unwrap(),
        good_version,
        "staging serves the previous version"
    );
    assert_eq!(
        version(production).unwrap(),
        good_version,
        "production was never touched"
    );

    let bad_seen = seen.iter().find(|(_, v)| *v != good_version).unwrap();
    let recovered = seen
        .iter()
        .find(|(at, v)| *v == good_version && *at > bad_seen.0)
        .unwrap();
    let recovery = recovered.0 - bad_seen.0;
    println!("RECOVERY_MS {}", recovery.as_millis());
    // Probe interval (300ms) + `for` window (1s) + under 1s of tool overhead, with slack for
    // a loaded CI machine.
    assert!(
        recovery < Duration::from_secs(5),
        "recovery took {recovery:?}"
    );

    let releases = pipe(dir.path(), false, &["releases", "staging"]);
    let table = String::from_utf8_lossy(&releases.stdout).to_string();
    assert!(table.contains("rolled_back"), "{table}");
    let verify = pipe(dir.path(), false, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}
