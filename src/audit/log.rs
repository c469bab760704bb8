//! Log: [`AuditLog`], the writer of `audit.jsonl` — one locked, fsynced append per event,
//! chained to the record before it, recovering from a tail torn by an interrupted write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::record::{
    AuditRecord, GENESIS_HASH, RECOVERY_EVENT, RESERVED_KEYS, canonical, hash_hex, line_with_hash,
    redact,
};
use super::verify::parse_record;

/// The file name of the log inside the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// How far back one read goes when looking for the start of the last line.
const TAIL_CHUNK: u64 = 8192;

/// The append-only audit log of one state directory. Cheap to share between threads (`append`
/// takes `&self`); every append locks the file, so processes can share it too.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Secret values, longest first, replaced by `***` in every record.
    secrets: RwLock<Vec<String>>,
}

impl AuditLog {
    /// Opens (creating if needed) `STATE_DIR/audit.jsonl`.
    pub fn open(state_dir: &Path) -> io::Result<AuditLog> {
        fs::create_dir_all(state_dir)?;
        let path = state_dir.join(AUDIT_FILE);
        let existed = path.exists();
        OpenOptions::new().create(true).append(true).open(&path)?;
        if !existed {
            crate::fsutil::sync_dir(state_dir)?;
        }
        Ok(AuditLog {
            path,
            secrets: RwLock::new(Vec::new()),
        })
    }

    /// The path of `audit.jsonl`.
    pub fn path(&self) -> &Path {
        &self.path
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
    pub fn append(&self, run: &str, event: &str, actor: &str, fields: Value) -> io::Result<()> {
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
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        let mut file = lock_exclusive(file)?;
        let tail = read_tail(&file)?;
        let text = lines_to_append(&tail, run, event, actor, fields, &secrets);
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        // Dropping the `Flock` releases the lock.
        Ok(())
    }
}

/// What an append needs to know about the end of the file.
struct Tail {
    /// The last complete record, if any.
    last: Option<AuditRecord>,
    /// Unreadable lines after it (left by interrupted writes), in file order.
    torn: Vec<Vec<u8>>,
    /// Whether the file ends with a newline (or is empty).
    ends_with_newline: bool,
}

/// The bytes one append writes: a separating newline if the file ends mid-line, a
/// `log_recovered` record if torn lines precede, then the event's own record.
fn lines_to_append(
    tail: &Tail,
    run: &str,
    event: &str,
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
        let (line, hash) = record_line(seq + 1, &prev, run, RECOVERY_EVENT, "pipe", recovery, &[]);
        text.push_str(&line);
        text.push('\n');
        (seq, prev) = (seq + 1, hash);
    }
    let (line, _) = record_line(seq + 1, &prev, run, event, actor, fields, secrets);
    text.push_str(&line);
    text.push('\n');
    text
}

/// How a `log_recovered` record names one torn line: its length and SHA-256.
pub fn describe_torn(line: &[u8]) -> Value {
    json!({ "bytes": line.len(), "sha256": hex::encode(Sha256::digest(line)) })
}

/// Builds one stored line (without newline) and its hash.
fn record_line(
    seq: u64,
    prev: &str,
    run: &str,
    event: &str,
    actor: &str,
    fields: Map<String, Value>,
    secrets: &[String],
) -> (String, String) {
    let mut object: Map<String, Value> = fields
        .into_iter()
        .filter(|(key, _)| !RESERVED_KEYS.contains(&key.as_str()))
        .collect();
    object.insert("run".into(), run.into());
    object.insert("event".into(), event.into());
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
fn read_tail(file: &File) -> io::Result<Tail> {
    let length = file.metadata()?.len();
    let ends_with_newline = length == 0 || read_range(file, length - 1, length)? == b"\n";
    let mut torn = Vec::new();
    if length == 0 {
        return Ok(Tail {
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
            return Ok(Tail {
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
    Ok(Tail {
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
