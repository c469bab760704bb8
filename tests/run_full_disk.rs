#![allow(clippy::unwrap_used)]
//! A full disk fails the run loudly: on a small tmpfs (mounted here; CI runs as root, and a
//! refused mount fails the test) a log that cannot be written, or a run state that cannot be
//! saved, ends the run with a reason and a non-zero exit, and the audit chain still verifies.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    _parent: tempfile::TempDir,
    mount_point: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let parent = tempfile::tempdir().unwrap();
        let mount_point = parent.path().join("disk");
        std::fs::create_dir(&mount_point).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        SmallDisk {
            _parent: parent,
            mount_point,
        }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// Runs `pipeline` (where `$FULL_DISK` stands for the disk's path) with its state directory on
/// a 1 MiB disk; returns (exit, console, project, disk).
fn run_on_small_disk(pipeline: &str) -> (i32, String, Project, SmallDisk) {
    let disk = SmallDisk::mount("1m");
    let project = Project::new(&pipeline.replace("$FULL_DISK", disk.path().to_str().unwrap()));
    let state_dir = disk.path().join("state");
    let output = project
        .command(&["run", "--state-dir", state_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap(), console, project, disk)
}

fn assert_audit_verifies(project: &Project, disk: &SmallDisk) {
    let state_dir = disk.path().join("state");
    let verify = project.run(&[
        "audit",
        "verify",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    assert_eq!(verify.code(), 0, "{}", verify.all());
}

#[test]
fn a_log_that_cannot_be_written_fails_the_job_and_the_run() {
    let (code, console, project, disk) = run_on_small_disk(
        r#"pipeline p {
             job noisy { run "yes 0123456789abcdef | head -c 3000000" }
             job after { needs = [noisy] run "echo after" }
           }"#,
    );
    assert_eq!(code, 1, "{console}");
    assert!(console.contains("could not be written"), "{console}");
    assert!(console.contains("No space left on device"), "{console}");
    assert!(!console.contains("[after] after"), "{console}");
    assert_audit_verifies(&project, &disk);
}

#[test]
fn a_run_state_that_cannot_be_saved_fails_the_run() {
    let (code, console, project, disk) = run_on_small_disk(
        r#"pipeline p {
             job fill {
               run "head -c 4000000 /dev/zero > \"$FULL_DISK/fill\" || true"
             }
             job after { needs = [fill] run "echo after" }
           }"#,
    );
    assert_ne!(code, 0, "{console}");
    assert!(console.contains("No space left on device"), "{console}");
    assert_audit_verifies(&project, &disk);
}

#[test]
fn an_audit_append_that_hits_a_full_disk_leaves_the_chain_whole() {
    let disk = SmallDisk::mount("256k");
    let state_dir = disk.path().join("state");
    let log = pipe::Store::directory(&state_dir).audit().unwrap();
    // One free page left: the second or third record no longer fits, mid-line.
    let reserve = disk.path().join("reserve");
    std::fs::write(&reserve, vec![0u8; 4096]).unwrap();
    let fill = std::fs::write(disk.path().join("fill"), vec![0u8; 1 << 20]);
    assert!(fill.is_err(), "the disk filled up");
    std::fs::remove_file(&reserve).unwrap();
    let field = "x".repeat(1500);
    let mut appended = 0;
    let error = loop {
        match log.append(
            "run-1",
            pipe::AuditEvent::RecoveryVerified,
            "ci",
            serde_json::json!({"note": field}),
        ) {
            Ok(()) => appended += 1,
            Err(error) => break error,
        }
        assert!(appended < 100, "the disk never filled");
    };
    assert!(appended >= 1, "{error}");
    let bytes = std::fs::read(state_dir.join(pipe::AUDIT_FILE)).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "no torn line was left");
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), appended);
    let summary = pipe::Store::directory(&state_dir).verify_audit().unwrap();
    assert_eq!(summary.events, appended);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
}

#[test]
fn a_disk_that_fills_during_a_deploy_gives_exit_4_with_the_reason() {
    let (code, console, project, disk) = run_on_small_disk(
        r#"pipeline svc {
             artifact app { path = "app.txt" }
             environment staging { url = "local" }
             job build {
               run "echo v1 > app.txt"
               produces = [app]
             }
             promote staging {
               after    = [build]
               artifact = app
               deploy   {
                 run "head -c 4000000 /dev/zero > \"$FULL_DISK/fill\" 2>/dev/null || true"
               }
               rollback { run "true" }
             }
           }"#,
    );
    assert_eq!(code, 4, "{console}");
    assert!(console.contains("No space left on device"), "{console}");
    assert_audit_verifies(&project, &disk);
}
