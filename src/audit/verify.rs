//! Verify: reads an audit chain back — checks the hash chain line by line and names the first
//! bad line ([`verify_bytes`]), or returns the readable records for reports ([`records_of`]).

use std::fmt;
use std::io;

use serde_json::Value;

use super::event::AuditEvent;
use super::record::{AuditRecord, GENESIS_HASH, describe_torn, hash_hex};

/// A log whose chain is intact.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySummary {
    /// Number of records in the chain.
    pub events: usize,
    /// The hash of the last record (64 zeros for an empty log): an auditor can note it down
    /// and later check the log still starts with the same chain.
    pub last_hash: String,
    /// Things that are sound but worth a look, e.g. a record torn by an interrupted write.
    pub warnings: Vec<String>,
}

/// Why a log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No audit chain was ever written (names where it was looked for).
    #[error("no audit log at {0}")]
    Missing(String),
    /// The log could not be read.
    #[error("cannot read the audit log: {0}")]
    Io(#[from] io::Error),
    /// The first line that breaks the chain (1-based).
    #[error("line {line}: {problem}")]
    BadLine { line: usize, problem: LineProblem },
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq)]
pub enum LineProblem {
    /// Not a JSON object, or a reserved key is missing or ill-typed.
    Unreadable(String),
    /// The line does not end with its `hash` field.
    MissingHash,
    /// The stored hash is not the SHA-256 of the rest of the line.
    HashMismatch,
    /// `seq` is not one more than the record before.
    SeqGap { expected: u64, found: u64 },
    /// `prev` is not the hash of the record before.
    BrokenLink,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::Unreadable(why) => write!(f, "not a readable audit record ({why})"),
            LineProblem::MissingHash => write!(f, "the line does not end with its \"hash\" field"),
            LineProblem::HashMismatch => {
                write!(
                    f,
                    "hash mismatch (the line was modified after it was written)"
                )
            }
            LineProblem::SeqGap { expected, found } => write!(
                f,
                "sequence gap: expected seq {expected}, found {found} (a line was deleted or inserted)"
            ),
            LineProblem::BrokenLink => write!(
                f,
                "broken chain: \"prev\" is not the hash of the record before \
                 (a line was deleted, inserted or reordered)"
            ),
        }
    }
}

/// The chain check itself, over the file's bytes.
pub fn verify_bytes(bytes: &[u8]) -> Result<VerifySummary, VerifyError> {
    let mut chain = Chain::new();
    let lines = split_lines(bytes);
    let count = lines.len();
    for (index, (line, terminated)) in lines.into_iter().enumerate() {
        let number = index + 1;
        let last_unterminated = index + 1 == count && !terminated;
        match parse_record(number, line) {
            Ok(record) => chain.accept(&record, line, last_unterminated)?,
            Err(_) if last_unterminated => chain.warnings.push(format!(
                "line {number}: incomplete last record (interrupted write); \
                 ignored, the next append starts a new line"
            )),
            Err(problem) => chain.unreadable.push((number, line, problem)),
        }
    }
    if let Some((line, _, problem)) = chain.unreadable.into_iter().next() {
        return Err(VerifyError::BadLine { line, problem });
    }
    Ok(VerifySummary {
        events: chain.events,
        last_hash: chain.last_hash,
        warnings: chain.warnings,
    })
}

/// The state of a walk along the chain.
struct Chain<'a> {
    events: usize,
    last_hash: String,
    warnings: Vec<String>,
    /// Unreadable lines not yet acknowledged by a `log_recovered` record.
    unreadable: Vec<(usize, &'a [u8], LineProblem)>,
}

impl<'a> Chain<'a> {
    fn new() -> Self {
        Chain {
            events: 0,
            last_hash: GENESIS_HASH.to_string(),
            warnings: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    /// Checks one readable record against the chain so far and extends the chain.
    fn accept(
        &mut self,
        record: &AuditRecord,
        line: &[u8],
        unterminated: bool,
    ) -> Result<(), VerifyError> {
        let bad = |problem| VerifyError::BadLine {
            line: record.line,
            problem,
        };
        if !self.unreadable.is_empty() {
            self.acknowledge_torn(record)?;
        }
        check_hash(line, &record.hash).map_err(bad)?;
        let expected = self.events as u64 + 1;
        if record.seq != expected {
            return Err(bad(LineProblem::SeqGap {
                expected,
                found: record.seq,
            }));
        }
        if record.prev != self.last_hash {
            return Err(bad(LineProblem::BrokenLink));
        }
        if unterminated {
            self.warnings.push(format!(
                "line {}: the last record has no final newline (interrupted write); it verifies",
                record.line
            ));
        }
        self.events += 1;
        self.last_hash = record.hash.clone();
        Ok(())
    }

    /// Unreadable lines are sound only when the next record is the `log_recovered` that the
    /// append after an interrupted write leaves, naming exactly those lines by hash.
    fn acknowledge_torn(&mut self, record: &AuditRecord) -> Result<(), VerifyError> {
        let described: Vec<Value> = self
            .unreadable
            .iter()
            .map(|(_, line, _)| describe_torn(line))
            .collect();
        let acknowledged = record.kind() == Some(AuditEvent::LogRecovered)
            && record.fields.get("torn") == Some(&Value::Array(described));
        let pending = std::mem::take(&mut self.unreadable);
        match pending.first() {
            Some((first, _, problem)) if !acknowledged => Err(VerifyError::BadLine {
                line: *first,
                problem: problem.clone(),
            }),
            _ => {
                let lines: Vec<String> = pending
                    .iter()
                    .map(|(number, _, _)| number.to_string())
                    .collect();
                self.warnings.push(format!(
                    "line {}: torn by an interrupted write, acknowledged by the {} record on line {}",
                    lines.join(", "),
                    AuditEvent::LogRecovered,
                    record.line
                ));
                Ok(())
            }
        }
    }
}

/// The stored hash must end the line and be the SHA-256 of the line without it (with the
/// closing brace kept): see docs/audit.md.
fn check_hash(line: &[u8], hash: &str) -> Result<(), LineProblem> {
    let suffix = format!(",\"hash\":\"{hash}\"}}");
    let text = std::str::from_utf8(line).map_err(|_| LineProblem::HashMismatch)?;
    let body = text
        .strip_suffix(suffix.as_str())
        .ok_or(LineProblem::MissingHash)?;
    if hash_hex(&format!("{body}}}")) == hash {
        Ok(())
    } else {
        Err(LineProblem::HashMismatch)
    }
}

/// Parses one line into a record; any failure makes the line unreadable.
pub(crate) fn parse_record(number: usize, line: &[u8]) -> Result<AuditRecord, LineProblem> {
    let value: Value = serde_json::from_slice(line).map_err(|error| {
        let detail = error.to_string();
        LineProblem::Unreadable(format!("bad JSON: {detail}"))
    })?;
    let Value::Object(object) = value else {
        return Err(LineProblem::Unreadable("not a JSON object".into()));
    };
    AuditRecord::from_json(number, object)
        .map_err(|key| LineProblem::Unreadable(format!("missing or ill-typed \"{key}\"")))
}

/// Splits on `\n`; each line says whether a newline ended it. A final empty piece after the
/// last newline is not a line.
fn split_lines(bytes: &[u8]) -> Vec<(&[u8], bool)> {
    let mut lines: Vec<(&[u8], bool)> = bytes
        .split(|&byte| byte == b'\n')
        .map(|line| (line, true))
        .collect();
    if let Some(last) = lines.pop()
        && !last.0.is_empty()
    {
        lines.push((last.0, false));
    }
    lines
}

/// The readable records of a chain's bytes, in order, for reports (unreadable lines skipped).
pub fn records_of(bytes: &[u8]) -> Vec<AuditRecord> {
    split_lines(bytes)
        .into_iter()
        .enumerate()
        .filter_map(|(index, (line, _))| parse_record(index + 1, line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AUDIT_FILE, AuditLog};
    use crate::store::Store;
    use std::fs;
    use std::path::Path;

    fn verify(state_dir: &Path) -> Result<VerifySummary, VerifyError> {
        Store::directory(state_dir).verify_audit()
    }

    fn read_events(state_dir: &Path) -> io::Result<Vec<AuditRecord>> {
        Ok(Store::directory(state_dir).audit_records().unwrap())
    }
    use serde_json::json;
    use std::io::Write;

    fn log_with(events: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = Store::directory(dir.path()).audit().unwrap();
        for index in 0..events {
            log.append(
                "run-1",
                AuditEvent::GatePassed,
                "ci",
                json!({"gate": format!("g{index}")}),
            )
            .unwrap();
        }
        (dir, log)
    }

    fn lines(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join(AUDIT_FILE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(dir: &Path, lines: &[String]) {
        fs::write(dir.join(AUDIT_FILE), lines.join("\n") + "\n").unwrap();
    }

    fn bad_line(result: Result<VerifySummary, VerifyError>) -> (usize, LineProblem) {
        match result {
            Err(VerifyError::BadLine { line, problem }) => (line, problem),
            other => panic!("expected a bad line, got {other:?}"),
        }
    }

    #[test]
    fn a_chain_of_many_events_verifies() {
        let (dir, _log) = log_with(40);
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.events, 40);
        assert!(summary.warnings.is_empty());
        let events = read_events(dir.path()).unwrap();
        assert_eq!(events.len(), 40);
        assert_eq!(events[0].prev, GENESIS_HASH);
        assert_eq!(events[39].hash, summary.last_hash);
        assert_eq!(events[5].field_str("gate"), Some("g5"));
    }

    #[test]
    fn an_empty_log_verifies_and_a_missing_one_does_not() {
        let (dir, _log) = log_with(0);
        assert_eq!(verify(dir.path()).unwrap().events, 0);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(verify(empty.path()), Err(VerifyError::Missing(_))));
    }

    #[test]
    fn reserved_keys_cannot_be_overridden() {
        let (dir, log) = log_with(1);
        log.append(
            "r",
            AuditEvent::GateFailed,
            "ci",
            json!({"seq": 99, "hash": "x", "run": "other"}),
        )
        .unwrap();
        let events = read_events(dir.path()).unwrap();
        assert_eq!((events[1].seq, events[1].run.as_str()), (2, "r"));
        assert!(events[1].fields.is_empty());
        assert!(verify(dir.path()).is_ok());
    }

    #[test]
    fn a_changed_value_is_a_hash_mismatch_on_its_line() {
        let (dir, _log) = log_with(5);
        let mut all = lines(dir.path());
        all[2] = all[2].replace("\"g2\"", "\"g7\"");
        write_lines(dir.path(), &all);
        assert_eq!(bad_line(verify(dir.path())), (3, LineProblem::HashMismatch));
    }

    #[test]
    fn a_deleted_line_is_a_sequence_gap() {
        let (dir, _log) = log_with(5);
        let mut all = lines(dir.path());
        all.remove(1);
        write_lines(dir.path(), &all);
        assert_eq!(
            bad_line(verify(dir.path())),
            (
                2,
                LineProblem::SeqGap {
                    expected: 2,
                    found: 3
                }
            )
        );
    }

    #[test]
    fn a_rewritten_chain_with_a_wrong_link_is_broken() {
        let (dir, _log) = log_with(3);
        let other = tempfile::tempdir().unwrap();
        let other_log = Store::directory(other.path()).audit().unwrap();
        other_log
            .append("x", AuditEvent::WatchSample, "a", Value::Null)
            .unwrap();
        other_log
            .append("x", AuditEvent::WatchSample, "a", Value::Null)
            .unwrap();
        let mut all = lines(dir.path());
        all[1] = lines(other.path())[1].clone();
        write_lines(dir.path(), &all);
        assert_eq!(bad_line(verify(dir.path())), (2, LineProblem::BrokenLink));
    }

    #[test]
    fn an_unreadable_line_in_the_middle_fails() {
        let (dir, _log) = log_with(3);
        let mut all = lines(dir.path());
        all.insert(1, "{not json".into());
        write_lines(dir.path(), &all);
        let (line, problem) = bad_line(verify(dir.path()));
        assert_eq!(line, 2);
        assert!(matches!(problem, LineProblem::Unreadable(_)));
    }

    #[test]
    fn a_torn_tail_is_a_warning_and_the_next_append_recovers() {
        let (dir, log) = log_with(3);
        let path = dir.path().join(AUDIT_FILE);
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"actor\":\"ci\",\"ev").unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.events, 3);
        assert!(summary.warnings[0].contains("line 4: incomplete last record"));

        log.append("run-2", AuditEvent::RunStarted, "ci", Value::Null)
            .unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.events, 5, "the recovery record and the new event");
        assert!(summary.warnings[0].contains("acknowledged by the log_recovered record on line 5"));
        let events = read_events(dir.path()).unwrap();
        assert_eq!(events[3].event, AuditEvent::LogRecovered.as_str());
        assert_eq!(
            (events[4].seq, events[4].event.as_str()),
            (5, "run_started")
        );
    }

    #[test]
    fn a_garbled_line_cannot_pose_as_the_torn_one() {
        let (dir, log) = log_with(2);
        let path = dir.path().join(AUDIT_FILE);
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        log.append("run-2", AuditEvent::RunStarted, "ci", Value::Null)
            .unwrap();
        let mut all = lines(dir.path());
        all[2] = "{\"tors".into();
        write_lines(dir.path(), &all);
        let (line, _) = bad_line(verify(dir.path()));
        assert_eq!(line, 3);
    }

    #[test]
    fn a_record_missing_only_its_newline_still_counts() {
        let (dir, log) = log_with(2);
        let path = dir.path().join(AUDIT_FILE);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.trim_end()).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.events, 2);
        assert!(summary.warnings[0].contains("no final newline"));
        log.append("r", AuditEvent::WatchSample, "a", Value::Null)
            .unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!((summary.events, summary.warnings.len()), (3, 0));
    }

    #[test]
    fn secrets_are_redacted_everywhere_before_hashing() {
        let (dir, log) = log_with(0);
        log.set_secrets(vec!["hunter2".into(), String::new(), "hunter2-long".into()]);
        let fields =
            json!({"command": "deploy --token hunter2-long", "nested": {"list": ["a hunter2 b"]}});
        log.append("run hunter2", AuditEvent::DeployStarted, "ci", fields)
            .unwrap();
        let text = fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("deploy --token ***") && text.contains("a *** b"));
        assert!(verify(dir.path()).is_ok());
    }

    #[test]
    fn threads_appending_at_once_keep_one_chain() {
        let (dir, log) = log_with(0);
        let log = std::sync::Arc::new(log);
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for index in 0..25 {
                        log.append(
                            "r",
                            AuditEvent::WatchSample,
                            "ci",
                            json!({"worker": worker, "i": index}),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .for_each(|worker| worker.join().unwrap());
        assert_eq!(verify(dir.path()).unwrap().events, 200);
    }

    #[test]
    fn an_event_name_this_version_does_not_know_still_verifies_and_shows() {
        let (dir, log) = log_with(1);
        let first = read_events(dir.path()).unwrap().remove(0);
        let Value::Object(object) = json!({
            "seq": 2, "ts": "2026-11-01T10:00:00.000Z", "run": "r", "actor": "ci",
            "event": "feature_flag_flipped", "prev": first.hash, "environment": "staging"
        }) else {
            panic!("not an object")
        };
        let text = crate::audit::record::canonical(&object);
        let line = crate::audit::record::line_with_hash(&text, &hash_hex(&text));
        let mut all = lines(dir.path());
        all.push(line);
        write_lines(dir.path(), &all);
        assert_eq!(verify(dir.path()).unwrap().events, 2);

        let events = read_events(dir.path()).unwrap();
        assert_eq!(events[0].kind(), Some(AuditEvent::GatePassed));
        assert_eq!(events[1].kind(), None);
        let shown = crate::audit::timeline_line(&events[1]);
        assert!(
            shown.ends_with("ci  feature_flag_flipped  staging"),
            "{shown}"
        );

        log.append("r", AuditEvent::RunFinished, "ci", Value::Null)
            .unwrap();
        assert_eq!(verify(dir.path()).unwrap().events, 3);
    }

    #[test]
    fn non_object_fields_are_refused() {
        let (_dir, log) = log_with(0);
        assert!(
            log.append("r", AuditEvent::WatchSample, "a", json!([1]))
                .is_err()
        );
    }
}
