//! Log: [`AuditLog`], the writer of `audit.jsonl` — one locked, fsynced append per event,
//! chained to the record before it, recovering from a tail torn by an interrupted write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};

use super::event::AuditEvent;
use super::record::{
    AuditRecord, GENESIS_HASH, RESERVED_KEYS, canonical, describe_torn, hash_hex, line_with_hash,
    redact,
};
use super::verify::parse_record;

/// How far back one read goes when looking for the start of the last line.
const TAIL_CHUNK: u64 = 8192;

/// Where an audit chain is kept: the backend behind an [`AuditLog`]. An append reads the
/// chain's tail and writes the lines `build` returns for it, atomically with respect to other
/// appenders (a file lock, a transaction).
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    fn append_with(&self, build: &mut dyn FnMut(&AuditTail) -> String) -> io::Result<()>;
}

/// The append-only audit log, whatever keeps it. Cheap to share between threads (`append`
/// takes `&self`); the sink serialises appends across processes.
#[derive(Debug)]
pub struct AuditLog {
    sink: Arc<dyn AuditSink>,
    /// Secret values, longest first, replaced by `***` in every record.
    secrets: RwLock<Vec<String>>,
}

/// `audit.jsonl` of the directory backend: one locked, fsynced append per event.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
}

impl AuditFile {
    /// Opens (creating if needed) the log file for a run, a promote, a rollback or a drill.
    /// The whole chain is verified here, once per opening, rather than on every append
    /// (which would read the whole log each time): a chain that does not verify is refused,
    /// naming its first bad line.
    pub fn open(path: &Path) -> io::Result<AuditFile> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let existed = path.exists();
        if existed {
            refuse_unverified(path)?;
        }
        OpenOptions::new().create(true).append(true).open(path)?;
        if !existed {
            crate::fsutil::sync_dir(dir)?;
        }
        Ok(AuditFile {
            path: path.to_path_buf(),
        })
    }
}

impl AuditSink for AuditFile {
    fn append_with(&self, build: &mut dyn FnMut(&AuditTail) -> String) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        let file = lock_exclusive(file)?;
        let tail = read_tail(&file)?;
        let text = build(&tail);
        write_whole(&file, tail.length, text.as_bytes())
        // Dropping the `Flock` releases the lock.
    }
}

impl AuditLog {
    /// The log kept by `sink` (the store opens it: `Store::audit`).
    pub fn new(sink: Arc<dyn AuditSink>) -> AuditLog {
        AuditLog {
            sink,
            secrets: RwLock::new(Vec::new()),
        }
    }

    /// Sets the secret values to redact from every later record (empty values are ignored).
    pub fn set_secrets(&self, values: Vec<String>) {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        match self.secrets.write() {
            Ok(mut secrets) => *secrets = values,
            Err(poisoned) => *poisoned.into_inner() = values,
        }
    }

    /// Appends one event and fsyncs it before returning, so a caller can record an action
    /// before the action proceeds. `fields` (a JSON object, or null for none) is merged into
    /// the record; the reserved keys (`seq`, `ts`, `run`, `event`, `actor`, `prev`, `hash`)
    /// in it are ignored.
    pub fn append(
        &self,
        run: &str,
        event: AuditEvent,
        actor: &str,
        fields: Value,
    ) -> io::Result<()> {
        let fields = match fields {
            Value::Object(object) => object,
            Value::Null => Map::new(),
            other => {
                let message = format!("audit fields must be a JSON object, got {other}");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
            }
        };
        let secrets = match self.secrets.read() {
            Ok(secrets) => secrets.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        // A sink calls `build` once per append; taking the fields avoids copying them.
        let mut fields = Some(fields);
        self.sink.append_with(&mut |tail| {
            let fields = fields.take().unwrap_or_default();
            lines_to_append(tail, run, event, actor, fields, &secrets)
        })
    }
}

/// Writes and fsyncs `text` at the end of the file, or leaves the file as it was: a failed or
/// partial write (a full disk) is cut back to `length` before the error is returned, so the
/// chain is never left with a torn record by a write that reported failure.
fn write_whole(mut file: &File, length: u64, text: &[u8]) -> io::Result<()> {
    let written = file.write_all(text).and_then(|()| file.sync_all());
    if let Err(error) = written {
        return match file.set_len(length).and_then(|()| file.sync_all()) {
            Ok(()) => Err(error),
            Err(undo) => Err(io::Error::new(
                error.kind(),
                format!("{error} (and the partial record could not be removed: {undo})"),
            )),
        };
    }
    Ok(())
}

/// An error unless the chain of `path` verifies. A tail of unreadable lines with no record
/// after them is what a crash mid-append leaves; the next append acknowledges it with a
/// `log_recovered` record, so it is not refused.
fn refuse_unverified(path: &Path) -> io::Result<()> {
    let bytes = fs::read(path)?;
    match super::verify::verify_bytes(&bytes) {
        Ok(_) => Ok(()),
        Err(super::verify::VerifyError::BadLine { line, .. }) if is_torn_tail(&bytes, line) => {
            Ok(())
        }
        Err(super::verify::VerifyError::Io(error)) => Err(error),
        Err(error) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the audit chain of {} does not verify ({error}); refusing to append to it \
                 (see `pipe audit verify`)",
                path.display()
            ),
        )),
    }
}

/// Whether no line from `first_bad` (1-based) on is a readable record.
fn is_torn_tail(bytes: &[u8], first_bad: usize) -> bool {
    bytes
        .split(|&byte| byte == b'\n')
        .skip(first_bad.saturating_sub(1))
        .all(|line| line.is_empty() || parse_record(0, line).is_err())
}

/// What an append needs to know about the end of the chain.
#[derive(Debug, Default)]
pub struct AuditTail {
    /// The file's length when the lock was taken: where a failed append is cut back to.
    pub length: u64,
    /// The last complete record, if any.
    pub last: Option<AuditRecord>,
    /// Unreadable lines after it (left by interrupted writes), in file order.
    pub torn: Vec<Vec<u8>>,
    /// Whether the file ends with a newline (or is empty).
    pub ends_with_newline: bool,
}

/// The bytes one append writes: a separating newline if the file ends mid-line, a
/// `log_recovered` record if torn lines precede, then the event's own record.
fn lines_to_append(
    tail: &AuditTail,
    run: &str,
    event: AuditEvent,
    actor: &str,
    fields: Map<String, Value>,
    secrets: &[String],
) -> String {
    let mut text = String::new();
    if !tail.ends_with_newline {
        text.push('\n');
    }
    let (mut seq, mut prev) = match &tail.last {
        Some(record) => (record.seq, record.hash.clone()),
        None => (0, GENESIS_HASH.to_string()),
    };
    if !tail.torn.is_empty() {
        let torn: Vec<Value> = tail.torn.iter().map(|line| describe_torn(line)).collect();
        let mut recovery = Map::new();
        recovery.insert("torn".into(), Value::Array(torn));
        let (line, hash) = record_line(
            seq + 1,
            &prev,
            run,
            AuditEvent::LogRecovered,
            "pipe",
            recovery,
            &[],
        );
        text.push_str(&line);
        text.push('\n');
        (seq, prev) = (seq + 1, hash);
    }
    let (line, _) = record_line(seq + 1, &prev, run, event, actor, fields, secrets);
    text.push_str(&line);
    text.push('\n');
    text
}

/// Builds one stored line (without newline) and its hash.
fn record_line(
    seq: u64,
    prev: &str,
    run: &str,
    event: AuditEvent,
    actor: &str,
    fields: Map<String, Value>,
    secrets: &[String],
) -> (String, String) {
    let mut object: Map<String, Value> = fields
        .into_iter()
        .filter(|(key, _)| !RESERVED_KEYS.contains(&key.as_str()))
        .collect();
    object.insert("run".into(), run.into());
    object.insert("event".into(), event.as_str().into());
    object.insert("actor".into(), actor.into());
    let mut value = Value::Object(object);
    redact(&mut value, secrets);
    let Value::Object(mut object) = value else {
        unreachable!("redaction keeps an object an object")
    };
    object.insert("seq".into(), seq.into());
    object.insert("ts".into(), now_rfc3339().into());
    object.insert("prev".into(), prev.into());
    let text = canonical(&object);
    let hash = hash_hex(&text);
    (line_with_hash(&text, &hash), hash)
}

/// The current time, RFC 3339 in UTC with milliseconds (`2026-11-23T23:59:01.123Z`).
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Takes an exclusive `flock` on the file, waiting as long as another holder keeps it.
fn lock_exclusive(mut file: File) -> io::Result<Flock<File>> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(locked) => return Ok(locked),
            Err((returned, Errno::EINTR)) => file = returned,
            Err((_, errno)) => return Err(io::Error::from(errno)),
        }
    }
}

/// Reads lines backwards from the end until the last readable record, without reading the
/// whole file.
fn read_tail(file: &File) -> io::Result<AuditTail> {
    let length = file.metadata()?.len();
    let ends_with_newline = length == 0 || read_range(file, length - 1, length)? == b"\n";
    let mut torn = Vec::new();
    if length == 0 {
        return Ok(AuditTail {
            length,
            last: None,
            torn,
            ends_with_newline,
        });
    }
    let mut line_end = if ends_with_newline {
        length - 1
    } else {
        length
    };
    loop {
        let line_start = find_line_start(file, line_end)?;
        let line = read_range(file, line_start, line_end)?;
        if let Ok(record) = parse_record(0, &line) {
            torn.reverse();
            return Ok(AuditTail {
                length,
                last: Some(record),
                torn,
                ends_with_newline,
            });
        }
        torn.push(line);
        if line_start == 0 {
            break;
        }
        line_end = line_start - 1;
    }
    torn.reverse();
    Ok(AuditTail {
        length,
        last: None,
        torn,
        ends_with_newline,
    })
}

/// The offset just after the last newline before `line_end`, or 0.
fn find_line_start(file: &File, line_end: u64) -> io::Result<u64> {
    let mut chunk_end = line_end;
    while chunk_end > 0 {
        let chunk_start = chunk_end.saturating_sub(TAIL_CHUNK);
        let chunk = read_range(file, chunk_start, chunk_end)?;
        if let Some(index) = chunk.iter().rposition(|&byte| byte == b'\n') {
            return Ok(chunk_start + index as u64 + 1);
        }
        chunk_end = chunk_start;
    }
    Ok(0)
}

/// The bytes in `[start, end)`.
fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let length = usize::try_from(end - start)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "audit line too long"))?;
    let mut buffer = vec![0; length];
    file.read_exact_at(&mut buffer, start)?;
    Ok(buffer)
}

/// The tail of a chain held as bytes (a backend that keeps the chain in memory or in rows).
pub fn tail_of(bytes: &[u8]) -> AuditTail {
    let ends_with_newline = bytes.last().is_none_or(|&byte| byte == b'\n');
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut torn = Vec::new();
    let mut last = None;
    if !bytes.is_empty() {
        for line in body.rsplit(|&byte| byte == b'\n') {
            if let Ok(record) = parse_record(0, line) {
                last = Some(record);
                break;
            }
            torn.push(line.to_vec());
        }
    }
    torn.reverse();
    AuditTail {
        length: bytes.len() as u64,
        last,
        torn,
        ends_with_newline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::AUDIT_FILE;
    use crate::deliver::ledger::{Ledger, Release, ReleaseStatus};
    use crate::store::{LockRequest, Store};
    use std::time::Duration;

    fn open(dir: &Path) -> Result<AuditLog, crate::store::StoreError> {
        Store::directory(dir).audit()
    }

    #[test]
    fn opening_refuses_a_chain_that_does_not_verify_and_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).unwrap();
        for event in [
            AuditEvent::RunStarted,
            AuditEvent::GatePassed,
            AuditEvent::RunFinished,
        ] {
            log.append("run-1", event, "ci", Value::Null).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        fs::write(
            dir.path().join(AUDIT_FILE),
            text.replacen("\"event\":\"gate_passed\"", "\"event\":\"gate_failed\"", 1),
        )
        .unwrap();
        let error = open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("does not verify (line 2: hash mismatch"),
            "{error}"
        );
    }

    #[test]
    fn opening_accepts_a_torn_tail_that_the_next_append_acknowledges() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).unwrap();
        log.append("run-1", AuditEvent::RunStarted, "ci", Value::Null)
            .unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(AUDIT_FILE))
            .unwrap();
        file.write_all(b"{\"seq\":2,\"ts\n").unwrap();
        let reopened = open(dir.path()).unwrap();
        reopened
            .append("run-2", AuditEvent::RunFinished, "ci", Value::Null)
            .unwrap();
        let summary = Store::directory(dir.path()).verify_audit().unwrap();
        assert_eq!(
            summary.events, 3,
            "run_started, log_recovered, run_finished"
        );
    }

    #[test]
    fn a_missing_log_is_refused_only_where_a_ledger_records_releases() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path()).unwrap();
        fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
        let store = Store::directory(dir.path());
        let lease = store
            .lock(&LockRequest::new("svc", "staging", "run-1", Duration::ZERO))
            .unwrap();
        let mut ledger = Ledger::load(&store, "svc", "staging").unwrap();
        ledger
            .begin(
                &lease,
                Release {
                    version: "1".into(),
                    artifact: "bin".into(),
                    digest: "sha256:ab".into(),
                    run: "run-1".into(),
                    started_at: "2026-11-23T00:00:00Z".into(),
                    finished_at: None,
                    status: ReleaseStatus::Stable,
                    note: None,
                    rollback_to: None,
                },
            )
            .unwrap();
        let error = open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("is missing, but the ledger"), "{error}");
        assert!(!dir.path().join(AUDIT_FILE).exists());
    }
}
