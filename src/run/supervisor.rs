//! The step supervisor: one small `pipe __supervise` process per runner that SIGKILLs every step
//! process group still alive when the runner dies (even by `kill -9`), then exits.
//!
//! The runner writes `+PGID` when a step starts and `-PGID` once its group is gone into the
//! supervisor's stdin; the kernel closes that pipe when the runner dies, however it dies, and
//! the supervisor reads end-of-file. It lives in its own process group, so a Ctrl-C meant for
//! the runner (which stops its steps itself) does not end it. Environment locks name the
//! supervisor, so the next holder of a lock waits for it: see `deliver::lock`.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The hidden first argument that makes `pipe` a supervisor.
pub const SUBCOMMAND: &str = "__supervise";

/// How long the supervisor waits for killed groups to disappear before it gives up.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The executable to start as the supervisor; unset (library use, unit tests): no supervisor.
static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

static SUPERVISOR: Mutex<Option<Supervisor>> = Mutex::new(None);

struct Supervisor {
    child: Child,
    stdin: ChildStdin,
}

/// Whether this process was started as a supervisor.
pub fn is_invocation() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == SUBCOMMAND)
}

/// Makes this process supervise its steps: the `pipe` binary calls it at start.
pub fn enable() {
    if let Ok(exe) = std::env::current_exe() {
        let _ = EXECUTABLE.set(exe);
    }
}

/// Starts the supervisor if supervision is enabled and it is not running yet; its pid.
pub fn ensure_started() -> io::Result<Option<u32>> {
    let Some(exe) = EXECUTABLE.get() else {
        return Ok(None);
    };
    let mut guard = lock();
    if guard.is_none() {
        *guard = Some(start(exe)?);
    }
    Ok(guard.as_ref().map(|supervisor| supervisor.child.id()))
}

/// The running supervisor's pid, if any.
pub fn pid() -> Option<u32> {
    lock().as_ref().map(|supervisor| supervisor.child.id())
}

/// Tells the supervisor a step's process group exists.
pub fn register(pgid: Pid) -> io::Result<()> {
    send(&format!("+{pgid}\n"))
}

/// Tells the supervisor a step's process group is gone.
pub fn unregister(pgid: Pid) -> io::Result<()> {
    send(&format!("-{pgid}\n"))
}

fn send(line: &str) -> io::Result<()> {
    let mut guard = lock();
    match guard.as_mut() {
        Some(supervisor) => supervisor.stdin.write_all(line.as_bytes()),
        None => Ok(()),
    }
}

fn lock() -> MutexGuard<'static, Option<Supervisor>> {
    match SUPERVISOR.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn start(exe: &PathBuf) -> io::Result<Supervisor> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        // Nothing to say, and holding the runner's output pipes open would make a caller
        // that reads them to the end wait for the supervisor too.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("the supervisor has no stdin"))?;
    Ok(Supervisor { child, stdin })
}

/// The supervisor's main loop: keeps the registered groups until its stdin closes, then kills
/// those still alive and waits (bounded) until they are gone. Returns the exit code.
pub fn serve() -> i32 {
    let mut groups = BTreeSet::new();
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else {
            break;
        };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.parse::<i32>() else {
            continue;
        };
        match sign {
            "+" if pgid > 1 => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    kill_groups(&groups);
    0
}

fn kill_groups(groups: &BTreeSet<i32>) {
    for &pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while groups.iter().any(|&pgid| group_has_live_member(pgid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process of the group is alive (zombies are not: their parent died and they wait
/// for init to reap them).
fn group_has_live_member(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields = stat_fields(&stat);
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, …
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Whether `pid` is a live (not zombie) supervisor process: a lock left by a runner that died
/// is not free while its supervisor still stops the runner's steps.
pub fn is_live_supervisor(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let is_supervisor = cmdline
        .split(|&byte| byte == 0)
        .any(|arg| arg == SUBCOMMAND.as_bytes());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    is_supervisor
        && stat_fields(&stat)
            .first()
            .is_some_and(|state| *state != "Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_and_group_after_the_command_name() {
        let stat = "42 (a) b) S 1 42 42 0";
        assert_eq!(stat_fields(stat)[..3], ["S", "1", "42"]);
    }

    #[test]
    fn this_test_process_is_not_a_supervisor() {
        assert!(!is_live_supervisor(std::process::id()));
    }
}
