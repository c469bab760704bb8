//! Environment locks of the directory backend: one promote (or hand rollback) per pipeline and
//! environment at a time, across processes. An exclusive `flock` on `.pipe/locks/PIPELINE.ENV.lock`, held by an open
//! file, so the kernel releases it when the holder dies, even by `kill -9`.
//!
//! The holder also writes `…lock.holder` (run id, pid, since, step supervisor) so a waiter can
//! name it. A clean release removes it, so a sidecar found beside a free lock was left by a
//! holder that died: while that holder's step supervisor still lives, its steps may still run,
//! and the lock is not taken until the supervisor has killed them and exited (no two
//! deploys of one environment overlap, even after a `kill -9`).

use super::lock::{LockError, LockHolder};
use crate::fsutil::write_atomic;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiter retries the lock.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A held environment lock; dropping it releases the lock.
#[derive(Debug)]
pub(super) struct EnvironmentLock {
    holder_path: PathBuf,
    // Declared last so the sidecar is removed (in `drop`) before the flock is released.
    _flock: Flock<File>,
}

impl Drop for EnvironmentLock {
    fn drop(&mut self) {
        // Best effort: a stale sidecar is harmless, the next holder overwrites it.
        let _ = std::fs::remove_file(&self.holder_path);
    }
}

/// `.pipe/locks/PIPELINE.ENV.lock`
fn lock_path(state_dir: &Path, pipeline: &str, environment: &str) -> PathBuf {
    state_dir
        .join("locks")
        .join(format!("{pipeline}.{environment}.lock"))
}

fn holder_path(lock_path: &Path) -> PathBuf {
    let mut name = lock_path.as_os_str().to_owned();
    name.push(".holder");
    PathBuf::from(name)
}

/// Reads who holds (or last held) the lock, if anyone said so.
pub(super) fn read_holder(
    state_dir: &Path,
    pipeline: &str,
    environment: &str,
) -> Option<LockHolder> {
    let bytes = std::fs::read(holder_path(&lock_path(state_dir, pipeline, environment))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Takes the environment's lock for `run`, waiting up to `timeout` (zero: try once).
#[cfg(test)]
fn acquire(
    state_dir: &Path,
    pipeline: &str,
    environment: &str,
    run: &str,
    timeout: Duration,
) -> Result<EnvironmentLock, LockError> {
    acquire_unless(state_dir, pipeline, environment, run, timeout, &|| false)
}

/// [`acquire`], giving up as soon as `interrupted` says so (Ctrl-C while waiting).
pub(super) fn acquire_unless(
    state_dir: &Path,
    pipeline: &str,
    environment: &str,
    run: &str,
    timeout: Duration,
    interrupted: &dyn Fn() -> bool,
) -> Result<EnvironmentLock, LockError> {
    let path = lock_path(state_dir, pipeline, environment);
    let io_error = |source: io::Error| LockError::Io {
        environment: environment.to_string(),
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let started = Instant::now();
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) if !dead_holders_steps_live(&path) => {
                return announce(flock, &path, run).map_err(io_error);
            }
            // Released by the kernel, but the dead holder's steps are still being killed.
            Ok(_) => {}
            Err((_, Errno::EWOULDBLOCK)) => {}
            Err((_, errno)) => return Err(io_error(io::Error::from(errno))),
        }
        let waited = started.elapsed();
        if interrupted() {
            return Err(LockError::Interrupted {
                environment: environment.to_string(),
            });
        }
        if waited >= timeout {
            return Err(LockError::Busy {
                environment: environment.to_string(),
                holder: read_holder(state_dir, pipeline, environment).map(Box::new),
                waited: timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout - waited));
    }
}

/// Whether the sidecar left by a holder that died names a step supervisor that still lives.
fn dead_holders_steps_live(lock_path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(holder_path(lock_path)) else {
        return false;
    };
    let Ok(holder) = serde_json::from_slice::<LockHolder>(&bytes) else {
        return false;
    };
    holder.supervisor.is_some_and(|pid| {
        Some(pid) != crate::run::supervisor::pid()
            && crate::run::supervisor::is_live_supervisor(pid)
    })
}

fn announce(flock: Flock<File>, path: &Path, run: &str) -> io::Result<EnvironmentLock> {
    let holder = LockHolder {
        run: run.to_string(),
        pid: std::process::id(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        supervisor: crate::run::supervisor::ensure_started()?,
        host: None,
    };
    let holder_path = holder_path(path);
    let text = serde_json::to_vec(&holder).map_err(io::Error::other)?;
    write_atomic(&holder_path, &text)?;
    Ok(EnvironmentLock {
        holder_path,
        _flock: flock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquirer_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "api", "prod", "run-1", Duration::ZERO).unwrap();
        let started = Instant::now();
        let error = acquire(
            dir.path(),
            "api",
            "prod",
            "run-2",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let message = error.to_string();
        assert!(
            message.starts_with("environment prod is locked by run run-1 (pid "),
            "{message}"
        );
        assert!(message.ends_with("; waited 0.3s"), "{message}");
        drop(held);
        let again = acquire(dir.path(), "api", "prod", "run-2", Duration::ZERO).unwrap();
        assert_eq!(read_holder(dir.path(), "api", "prod").unwrap().run, "run-2");
        drop(again);
        assert!(read_holder(dir.path(), "api", "prod").is_none());
    }

    #[test]
    fn environments_lock_independently() {
        let dir = tempfile::tempdir().unwrap();
        let _prod = acquire(dir.path(), "api", "prod", "run-1", Duration::ZERO).unwrap();
        let _staging = acquire(dir.path(), "api", "staging", "run-2", Duration::ZERO).unwrap();
        let _other = acquire(dir.path(), "web", "prod", "run-3", Duration::ZERO).unwrap();
    }

    #[test]
    fn waiter_gets_the_lock_when_released_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "api", "prod", "run-1", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let got = acquire(dir.path(), "api", "prod", "run-2", Duration::from_secs(5));
        releaser.join().unwrap();
        assert!(got.is_ok());
    }

    #[test]
    fn an_interrupt_stops_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let _held = acquire(dir.path(), "api", "prod", "run-1", Duration::ZERO).unwrap();
        let started = Instant::now();
        let error = acquire_unless(
            dir.path(),
            "api",
            "prod",
            "run-2",
            Duration::from_secs(60),
            &|| started.elapsed() > Duration::from_millis(150),
        )
        .unwrap_err();
        assert!(matches!(error, LockError::Interrupted { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_dead_holders_live_supervisor_keeps_the_lock_until_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        // Stands in for the supervisor of a runner killed while holding the lock.
        // It lives until the test ends it, so a busy machine cannot make it exit early.
        let mut supervisor = std::process::Command::new("sh")
            .args(["-c", "sleep 60; exit 0", crate::run::supervisor::SUBCOMMAND])
            .spawn()
            .unwrap();
        let path = lock_path(dir.path(), "api", "prod");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let dead = LockHolder {
            run: "run-1".into(),
            pid: 1,
            since: "2026-11-29T00:00:00Z".into(),
            supervisor: Some(supervisor.id()),
            host: None,
        };
        std::fs::write(holder_path(&path), serde_json::to_vec(&dead).unwrap()).unwrap();
        // A real supervisor has run long before its runner dies; wait until this one has exec'd.
        let exec_deadline = Instant::now() + Duration::from_secs(5);
        while !crate::run::supervisor::is_live_supervisor(supervisor.id()) {
            assert!(Instant::now() < exec_deadline, "the stand-in never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let busy = acquire(
            dir.path(),
            "api",
            "prod",
            "run-2",
            Duration::from_millis(300),
        );
        let busy = busy.unwrap_err();
        assert!(busy.to_string().contains("locked by run run-1"), "{busy}");
        supervisor.kill().unwrap();
        supervisor.wait().unwrap();
        let got = acquire(dir.path(), "api", "prod", "run-2", Duration::from_secs(10));
        assert!(got.is_ok(), "{got:?}");
    }

    #[test]
    fn whole_seconds_are_printed_without_decimals() {
        use crate::store::lock::format_wait;
        assert_eq!(format_wait(Duration::from_secs(30)), "30s");
        assert_eq!(format_wait(Duration::from_millis(1500)), "1.5s");
    }
}
