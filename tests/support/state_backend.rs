//! The state backend the integration tests run against: the directory (default), or with
//! `PIPE_TEST_STATE=postgres` one PostgreSQL 15 server per test binary and a fresh schema each.
//!
//! The server starts lazily, the first time a test asks for a state URL. It lives in a static,
//! which Rust never drops, so a watchdog in its own session stops it (and removes its files)
//! once the test binary's process is gone, however the binary ended.

#![allow(dead_code)]

#[path = "postgres.rs"]
pub mod postgres;

pub use postgres::Postgres;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable that picks the backend: unset or `directory`, or `postgres`.
pub const SWITCH: &str = "PIPE_TEST_STATE";

/// The database on the shared server that every test's schema lives in.
const DATABASE: &str = "pipe";

/// Whether this test binary runs against PostgreSQL.
pub fn on_postgres() -> bool {
    match std::env::var(SWITCH).as_deref() {
        Ok("postgres") => true,
        Ok("") | Ok("directory") | Err(_) => false,
        Ok(other) => panic!("{SWITCH}={other}: expected `postgres` or `directory`"),
    }
}

/// The `PIPE_STATE` of a new test project: `None` on the directory backend (the state is
/// `.pipe` beside the pipeline), else a URL to a schema no other test uses.
pub fn fresh_state() -> Option<String> {
    on_postgres().then(|| state_url(shared_server(), &fresh_schema()))
}

/// The one server of this test binary, started on first use.
pub fn shared_server() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = Postgres::start();
        server.stop_when_gone(std::process::id());
        server.create_database(DATABASE);
        server
    })
}

/// `t_PID_N`: unique across the tests of this binary and across binaries run at once.
pub fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("t_{}_{n}", std::process::id())
}

/// `postgresql://pipe@SOCKETDIR/pipe?schema=S`, the socket directory percent-encoded as the
/// host (how libpq and the Rust client spell a unix socket in a URL).
pub fn state_url(server: &Postgres, schema: &str) -> String {
    let socket = server.socket_dir().display().to_string();
    format!(
        "postgresql://pipe@{}/{DATABASE}?schema={schema}",
        percent_encode(&socket)
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `sql` in the tests' database of the shared server (`psql`'s unaligned output).
pub fn psql(sql: &str) -> String {
    shared_server().psql(DATABASE, sql)
}

/// The schema a state URL of [`state_url`] names.
pub fn schema_of(url: &str) -> &str {
    url.rsplit_once("schema=")
        .map_or("pipe", |(_, schema)| schema)
}

/// A run's state document as the PostgreSQL backend stores it (`run_docs`) on this binary's
/// shared server, `Null` when the run has none (yet).
pub fn run_state(url: &str, run: &str) -> serde_json::Value {
    run_state_on(shared_server(), url, run)
}

/// [`run_state`] on a server of the test's own.
pub fn run_state_on(server: &Postgres, url: &str, run: &str) -> serde_json::Value {
    let sql = format!(
        "SELECT convert_from(body, 'UTF8') FROM {}.run_docs WHERE run = '{}' AND doc = 'state'",
        schema_of(url),
        run.replace('\'', "''")
    );
    let output = server.try_psql(DATABASE, &sql);
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_default()
}
