//! A throwaway PostgreSQL 15 cluster for integration tests: `initdb -A trust -U pipe` in its own
//! temporary directory, listening on a unix socket only, stopped (`pg_ctl -m fast`) on drop.
//!
//! PostgreSQL refuses to run as root, so under root (as CI runs) the server runs as the
//! `postgres` user, owning its data directory; otherwise as the current user. A cluster that
//! cannot start fails the test loudly, with the server's log.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian's `postgresql-15` puts the server binaries (`PIPE_PG_BIN` overrides it).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("PIPE_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// `PATH` with the PostgreSQL binaries first, for processes that call `pg_dump`, `psql`…
pub fn path_with_bin_dir() -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin_dir().display())
}

pub struct Postgres {
    /// Holds the data and socket directories; removed after the server stops.
    root: tempfile::TempDir,
    data: PathBuf,
    socket: PathBuf,
    /// The user the server runs as, when it is not the current one.
    run_as: Option<&'static str>,
    running: bool,
}

impl Postgres {
    /// Starts a fresh cluster whose superuser is `pipe` (no password: `trust`).
    pub fn start() -> Postgres {
        let initdb = bin_dir().join("initdb");
        assert!(
            initdb.exists(),
            "this test needs PostgreSQL 15 ({} is missing): run .ci/install-postgres.sh",
            initdb.display()
        );
        let root = tempfile::Builder::new().prefix("pg").tempdir().unwrap();
        let run_as = nix::unistd::geteuid().is_root().then_some("postgres");
        let data = root.path().join("data");
        let socket = root.path().join("sock");
        for dir in [&data, &socket] {
            std::fs::create_dir(dir).unwrap();
        }
        if let Some(user) = run_as {
            // The server's user must reach its directories through the temp dir.
            set_mode(root.path(), 0o755);
            chown(&data, user);
            chown(&socket, user);
        }
        let mut postgres = Postgres {
            root,
            data,
            socket,
            run_as,
            running: false,
        };
        postgres.server(&["initdb", "-A", "trust", "-U", "pipe", "-E", "UTF8"]);
        postgres.pg_ctl_start();
        postgres.running = true;
        postgres
    }

    fn pg_ctl_start(&self) {
        let options = format!("-k {} -c listen_addresses=''", self.socket.display());
        let log = self.data.join("server.log");
        let started = self.command(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !started.status.success() {
            panic!(
                "PostgreSQL did not start: {}{}\nserver log:\n{}",
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    /// Stops the server (`pg_ctl -m fast`): every client connection drops.
    pub fn stop(&mut self) {
        let data = self.data.display().to_string();
        let stopped = self.command("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        assert!(stopped.status.success(), "pg_ctl stop failed");
        self.running = false;
    }

    /// Starts the stopped server again on the same socket and data.
    pub fn start_again(&mut self) {
        self.pg_ctl_start();
        self.running = true;
    }

    /// Runs a server program (`initdb`, …) on the data directory as the server's user.
    fn server(&self, args: &[&str]) {
        let (program, rest) = args.split_first().unwrap();
        let mut full = vec!["-D".to_string(), self.data.display().to_string()];
        full.extend(rest.iter().map(|a| a.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let output = self.command(program, &full);
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command(&self, program: &str, args: &[&str]) -> Output {
        let binary = bin_dir().join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        command
            .args(args)
            .current_dir(self.root.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
    }

    /// Spawns a watchdog, in its own session so a Ctrl-C of the tests does not take it down
    /// first, that stops the server and removes its files once process `parent` is gone: for
    /// a server kept in a static, which is never dropped.
    pub fn stop_when_gone(&self, parent: u32) {
        let pg_ctl = bin_dir().join("pg_ctl");
        let stop = match self.run_as {
            Some(user) => format!("runuser -u {user} -- {}", pg_ctl.display()),
            None => pg_ctl.display().to_string(),
        };
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{}'",
            self.data.display(),
            self.root.path().display()
        );
        let mut watchdog = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL watchdog: {e}"));
        // It outlives this process by design; a thread reaps it if it ends first.
        std::thread::spawn(move || watchdog.wait());
    }

    /// The directory of the server's socket: `PGHOST` for clients.
    pub fn socket_dir(&self) -> &Path {
        &self.socket
    }

    /// A libpq connection string for `database` as the superuser `pipe`.
    pub fn conninfo(&self, database: &str) -> String {
        format!("host={} user=pipe dbname={database}", self.socket.display())
    }

    /// Runs SQL in `database` with `psql` (stopping at the first error) and returns its
    /// unaligned, header-less output; panics with psql's error when it fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = self.try_psql(database, sql);
        assert!(
            output.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    pub fn try_psql(&self, database: &str, sql: &str) -> Output {
        Command::new(bin_dir().join("psql"))
            .args(["--no-psqlrc", "--tuples-only", "--no-align", "--quiet"])
            .args([
                "--set=ON_ERROR_STOP=1",
                "--dbname",
                &self.conninfo(database),
            ])
            .args(["--command", sql])
            .output()
            .unwrap()
    }

    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data.display().to_string();
            let _ = self.command("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, user: &str) {
    let owner = nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap_or_else(|| panic!("no user `{user}` to run PostgreSQL as (root cannot)"));
    nix::unistd::chown(path, Some(owner.uid), Some(owner.gid)).unwrap();
}
