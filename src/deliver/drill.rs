//! `pipe drill N`: a restore drill. Backup, then a timed restore, then verify; it passes only
//! when every block succeeds, the restore fits the RTO and the restored backup the RPO.
//!
//! The result is audited (`drill_started`, `drill_finished`) and kept as an evidence record
//! kept by the store as `drills` evidence, so "we can restore within two minutes" is a measured
//! fact. The backup the block names is stored by digest and re-hashed before the restore reads it.

use crate::audit::drills::parse_time;
use crate::audit::{AuditEvent, AuditLog};
use crate::compile::plan::{DrillPlan, StepBlockPlan};
use crate::deliver::drill_backup::{
    AuditUnwritable, BackupError, BackupFacts, output_value, store_backup, stored_backup,
    verify_backup,
};
use crate::deliver::probe_value::format_duration;
use crate::run::artifact::Provenance;
use crate::store::{LockError, LockRequest, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The evidence record's format.
pub const DRILL_SCHEMA: &str = "pipe.drill/v1";

/// How one block of a drill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillBlock {
    /// With the block's raw `$PIPE_OUTPUT` (the backup may name when its backup was taken).
    Succeeded {
        output: String,
    },
    /// The first failing step, already redacted.
    Failed(String),
    Interrupted,
}

/// What a drill needs from the runner: run one block of steps, off the async runtime, with
/// `${{ backup.path }}` and `${{ backup.digest }}` bound to the stored backup when there is one.
pub trait DrillHost {
    fn run_block(
        &self,
        node: &str,
        block: &StepBlockPlan,
        backup: Option<&BackupFacts>,
    ) -> DrillBlock;
}

/// The wall clock a drill is judged by: the real one, or one set to a fixed instant (moving on
/// from there) so that schedules and backup ages can be tested across a simulated month.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: chrono::TimeDelta,
}

impl Clock {
    /// A clock that reads `now` at the moment it is made.
    pub fn starting_at(now: DateTime<Utc>) -> Clock {
        Clock {
            offset: now - Utc::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

pub struct DrillRequest<'a> {
    pub name: &'a str,
    pub drill: &'a DrillPlan,
    pub pipeline: &'a str,
    pub store: &'a Store,
    /// Where the blocks run: a relative `backup_file=` is read from here.
    pub workdir: &'a Path,
    pub run_id: &'a str,
    pub actor: &'a str,
    /// `--from DIGEST`: restore this stored backup instead of taking a new one.
    pub from: Option<&'a str>,
    pub clock: Clock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillOutcome {
    Passed,
    Failed,
    Interrupted,
}

/// The evidence record of one drill, as kept by the store (`drills` evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    pub schema: String,
    pub drill: String,
    pub pipeline: String,
    pub environment: String,
    pub run: String,
    pub actor: String,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: DrillOutcome,
    pub rto_ms: u64,
    pub rpo_ms: u64,
    /// Durations of the blocks that ran.
    pub backup_ms: Option<u64>,
    pub restore_ms: Option<u64>,
    pub verify_ms: Option<u64>,
    /// How old the backup was when the restore began (the data a real restore would lose).
    pub backup_age_ms: Option<u64>,
    /// Why the drill did not pass, one line each; empty when it passed.
    pub failures: Vec<String>,
    /// The stored backup the restore was given (none when the backup block named no file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupFacts>,
    /// How often the drill must pass (`every`), so a report can tell when it falls due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
}

impl DrillReport {
    /// One line for the audit log and the console.
    pub fn summary(&self) -> String {
        let word = match self.outcome {
            DrillOutcome::Passed => "passed",
            DrillOutcome::Failed => "failed",
            DrillOutcome::Interrupted => "interrupted",
        };
        let restore = self.restore_ms.map_or("-".to_string(), format_duration);
        let age = self.backup_age_ms.map_or("-".to_string(), format_duration);
        format!(
            "drill {} {word}: restore {restore} (RTO {}), backup age {age} (RPO {})",
            self.drill,
            format_duration(self.rto_ms),
            format_duration(self.rpo_ms)
        )
    }
}

/// Why a drill did not run or its report was not kept; a failing block is a report, not this.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Audit(#[from] AuditUnwritable),
    #[error("{0}")]
    ReportUnencodable(#[from] serde_json::Error),
    #[error("{0}")]
    EvidenceUnwritable(#[from] StoreError),
}

/// Runs the drill under the environment's lock (a drill never overlaps a deploy or a rollback
/// of the same environment). `Err`: nothing ran (the lock is held, or the audit log cannot be
/// written); `Ok`: the report, already audited and stored, and where it was stored.
pub fn run_drill(
    request: &DrillRequest,
    host: &dyn DrillHost,
    audit: &AuditLog,
) -> Result<(DrillReport, String), DrillError> {
    let drill = request.drill;
    let lock = LockRequest::new(
        request.pipeline,
        &drill.environment,
        request.run_id,
        Duration::ZERO,
    );
    let _lease = request.store.lock(&lock)?;
    let started_at = rfc3339(request.clock.now());
    log(
        request,
        audit,
        AuditEvent::DrillStarted,
        json!({
            "rto_ms": drill.rto_ms,
            "rpo_ms": drill.rpo_ms,
            "from": request.from,
            "summary": format!("drill {} of {} started", request.name, drill.environment),
        }),
    )?;
    let mut report = DrillReport {
        schema: DRILL_SCHEMA.to_string(),
        drill: request.name.to_string(),
        pipeline: request.pipeline.to_string(),
        environment: drill.environment.clone(),
        run: request.run_id.to_string(),
        actor: request.actor.to_string(),
        started_at,
        finished_at: String::new(),
        outcome: DrillOutcome::Passed,
        rto_ms: drill.rto_ms,
        rpo_ms: drill.rpo_ms,
        backup_ms: None,
        restore_ms: None,
        verify_ms: None,
        backup_age_ms: None,
        failures: Vec::new(),
        backup: None,
        every_ms: drill.every_ms,
    };
    run_blocks(request, host, audit, &mut report);
    report.finished_at = rfc3339(request.clock.now());
    let mut fields = serde_json::to_value(&report)?;
    if let Some(object) = fields.as_object_mut() {
        object.insert("summary".into(), report.summary().into());
    }
    log(request, audit, AuditEvent::DrillFinished, fields)?;
    let path = store_evidence(request.store, &report)?;
    Ok((report, path))
}

/// Backup → restore (timed) → verify, filling in the report; stops at the first block that
/// fails or is interrupted (verify still runs after a restore that only missed its RTO).
fn run_blocks(
    request: &DrillRequest,
    host: &dyn DrillHost,
    audit: &AuditLog,
    report: &mut DrillReport,
) {
    let drill = request.drill;
    let node = |block: &str| format!("{}.{block}", request.name);
    let audit_as =
        |event: AuditEvent, fields: serde_json::Value| log(request, audit, event, fields);
    let (backup, taken) = match take_backup(request, host, audit, report) {
        Ok(taken) => taken,
        Err(failure) => return fail(report, "backup", failure),
    };
    report.backup.clone_from(&backup);
    if let Some(stored) = &backup
        && let Err(why) = verify_backup(request.store, stored, &audit_as)
    {
        return fail(report, "restore", DrillBlock::Failed(why.to_string()));
    }
    let age = (request.clock.now() - taken).to_std().unwrap_or_default();
    report.backup_age_ms = Some(millis(age));
    let (restore, took) =
        timed(|| host.run_block(&node("restore"), &drill.restore, backup.as_ref()));
    report.restore_ms = Some(took);
    if !matches!(restore, DrillBlock::Succeeded { .. }) {
        return fail(report, "restore", restore);
    }
    check_objectives(report);
    let (verify, took) = timed(|| host.run_block(&node("verify"), &drill.verify, backup.as_ref()));
    report.verify_ms = Some(took);
    if !matches!(verify, DrillBlock::Succeeded { .. }) {
        fail(report, "verify", verify);
    }
}

/// Runs the backup block (or, with `--from`, finds the named stored backup) and files the
/// backup it names in the store: the stored backup the restore is given (none when the block
/// named no file), and when the backup was taken.
fn take_backup(
    request: &DrillRequest,
    host: &dyn DrillHost,
    audit: &AuditLog,
    report: &mut DrillReport,
) -> Result<(Option<BackupFacts>, DateTime<Utc>), DrillBlock> {
    let audit_as =
        |event: AuditEvent, fields: serde_json::Value| log(request, audit, event, fields);
    if let Some(digest) = request.from {
        let audited = request.store.audit_records().unwrap_or_default();
        let stored = stored_backup(request.store, digest, &audited).map_err(block_failed)?;
        let taken = parse_time(&stored.created_at).ok_or_else(|| {
            DrillBlock::Failed(format!("backup {digest} states no readable creation time"))
        })?;
        return Ok((Some(stored), taken));
    }
    let backup_started = request.clock.now();
    let node = format!("{}.backup", request.name);
    let (backup, took) = timed(|| host.run_block(&node, &request.drill.backup, None));
    report.backup_ms = Some(took);
    let DrillBlock::Succeeded { output } = backup else {
        return Err(backup);
    };
    // A block that fetches last night's backup says when it was taken (`backup_time=`, Unix
    // seconds or RFC 3339); otherwise it counts as taken when the backup block started.
    let taken = output_value(&output, "backup_time")
        .and_then(parse_time)
        .unwrap_or(backup_started);
    let created_at = rfc3339(taken);
    let Some(file) = output_value(&output, "backup_file") else {
        return Ok((None, taken));
    };
    let provenance = Provenance {
        run_id: request.run_id.to_string(),
        ..Provenance::default()
    };
    let stored = store_backup(
        request.store,
        request.workdir,
        file,
        &created_at,
        &audit_as,
        &provenance,
        request.name,
    )
    .map_err(block_failed)?;
    Ok((Some(stored), taken))
}

/// A backup that cannot be used fails the drill's backup step like a failing block.
fn block_failed(error: BackupError) -> DrillBlock {
    DrillBlock::Failed(error.to_string())
}

/// The RTO and RPO, checked once the restore has succeeded.
fn check_objectives(report: &mut DrillReport) {
    if let Some(restore) = report.restore_ms.filter(|&ms| ms > report.rto_ms) {
        report.outcome = DrillOutcome::Failed;
        report.failures.push(format!(
            "the restore took {}, over the RTO of {}",
            format_duration(restore),
            format_duration(report.rto_ms)
        ));
    }
    if let Some(age) = report.backup_age_ms.filter(|&ms| ms > report.rpo_ms) {
        report.outcome = DrillOutcome::Failed;
        report.failures.push(format!(
            "the restored backup was {} old, over the RPO of {}",
            format_duration(age),
            format_duration(report.rpo_ms)
        ));
    }
}

fn fail(report: &mut DrillReport, block: &str, result: DrillBlock) {
    match result {
        DrillBlock::Interrupted => {
            report.outcome = DrillOutcome::Interrupted;
            report.failures.push(format!("interrupted during {block}"));
        }
        DrillBlock::Failed(why) => {
            report.outcome = DrillOutcome::Failed;
            report.failures.push(format!("{block} failed: {why}"));
        }
        DrillBlock::Succeeded { .. } => {}
    }
}

fn timed(run: impl FnOnce() -> DrillBlock) -> (DrillBlock, u64) {
    let started = Instant::now();
    let result = run();
    (result, millis(started.elapsed()))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn log(
    request: &DrillRequest,
    audit: &AuditLog,
    event: AuditEvent,
    mut fields: serde_json::Value,
) -> Result<(), AuditUnwritable> {
    if let Some(object) = fields.as_object_mut() {
        object.insert("drill".into(), request.name.into());
        object.insert(
            "environment".into(),
            request.drill.environment.clone().into(),
        );
    }
    audit
        .append(request.run_id, event, request.actor, fields)
        .map_err(|source| AuditUnwritable { event, source })
}

/// Keeps the report as `drills` evidence named `NAME-RUN`, whole (never torn).
fn store_evidence(store: &Store, report: &DrillReport) -> Result<String, DrillError> {
    let name = format!("{}-{}", report.drill, report.run);
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(store
        .state()
        .write_evidence("drills", &name, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Runs blocks by name from a script of results, recording the order.
    struct Scripted {
        results: RefCell<Vec<(&'static str, DrillBlock, Duration)>>,
        ran: RefCell<Vec<String>>,
    }

    impl DrillHost for Scripted {
        fn run_block(&self, node: &str, _: &StepBlockPlan, _: Option<&BackupFacts>) -> DrillBlock {
            self.ran.borrow_mut().push(node.to_string());
            let mut results = self.results.borrow_mut();
            let index = results
                .iter()
                .position(|(n, _, _)| node.ends_with(n))
                .unwrap();
            let (_, result, pause) = results.remove(index);
            std::thread::sleep(pause);
            result
        }
    }

    fn ok(output: &str) -> DrillBlock {
        DrillBlock::Succeeded {
            output: output.to_string(),
        }
    }

    fn drill(rto_ms: u64, rpo_ms: u64) -> DrillPlan {
        DrillPlan {
            environment: "staging".into(),
            rto_ms,
            rpo_ms,
            every_ms: None,
            secrets: Vec::new(),
            backup: StepBlockPlan::default(),
            restore: StepBlockPlan::default(),
            verify: StepBlockPlan::default(),
        }
    }

    fn run(plan: &DrillPlan, script: Vec<(&'static str, DrillBlock, Duration)>) -> DrillReport {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::directory(dir.path());
        let audit = store.audit().unwrap();
        let host = Scripted {
            results: RefCell::new(script),
            ran: RefCell::new(Vec::new()),
        };
        let request = DrillRequest {
            name: "restore_db",
            drill: plan,
            pipeline: "p",
            store: &store,
            workdir: dir.path(),
            run_id: "r1",
            actor: "alice",
            from: None,
            clock: Clock::default(),
        };
        let (report, path) = run_drill(&request, &host, &audit).unwrap();
        let stored: DrillReport =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(stored, report);
        report
    }

    #[test]
    fn a_restore_within_the_rto_of_a_fresh_backup_passes() {
        let zero = Duration::ZERO;
        let report = run(
            &drill(60_000, 3_600_000),
            vec![
                ("backup", ok(""), zero),
                ("restore", ok(""), zero),
                ("verify", ok(""), zero),
            ],
        );
        assert_eq!(report.outcome, DrillOutcome::Passed, "{report:?}");
        assert!(report.failures.is_empty());
        assert!(report.verify_ms.is_some());
    }

    #[test]
    fn a_slow_restore_fails_the_rto_but_is_still_verified() {
        let report = run(
            &drill(50, 3_600_000),
            vec![
                ("backup", ok(""), Duration::ZERO),
                ("restore", ok(""), Duration::from_millis(120)),
                ("verify", ok(""), Duration::ZERO),
            ],
        );
        assert_eq!(report.outcome, DrillOutcome::Failed);
        assert!(
            report.failures[0].contains("over the RTO of 50ms"),
            "{report:?}"
        );
        assert!(report.verify_ms.is_some());
    }

    #[test]
    fn an_old_backup_named_by_the_backup_block_fails_the_rpo() {
        let day_ago = chrono::Utc::now() - chrono::Duration::hours(25);
        let output = format!("backup_time={}\n", day_ago.to_rfc3339());
        let zero = Duration::ZERO;
        let report = run(
            &drill(60_000, 24 * 3_600_000),
            vec![
                ("backup", ok(&output), zero),
                ("restore", ok(""), zero),
                ("verify", ok(""), zero),
            ],
        );
        assert_eq!(report.outcome, DrillOutcome::Failed);
        assert!(
            report.failures[0].contains("over the RPO of 1d"),
            "{report:?}"
        );
        assert!(report.backup_age_ms.unwrap() >= 25 * 3_600_000 - 1000);
    }

    #[test]
    fn a_failed_restore_stops_the_drill_before_verify() {
        let zero = Duration::ZERO;
        let report = run(
            &drill(60_000, 3_600_000),
            vec![
                ("backup", ok(""), zero),
                (
                    "restore",
                    DrillBlock::Failed("step 1 exited with status 2".into()),
                    zero,
                ),
            ],
        );
        assert_eq!(report.outcome, DrillOutcome::Failed);
        assert_eq!(
            report.failures,
            ["restore failed: step 1 exited with status 2"]
        );
        assert_eq!(report.verify_ms, None);
    }

    #[test]
    fn a_drill_never_overlaps_a_deploy_of_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::directory(dir.path());
        let deploy = LockRequest::new("p", "staging", "deploy-run", Duration::ZERO);
        let _held = store.lock(&deploy).unwrap();
        let audit = store.audit().unwrap();
        let host = Scripted {
            results: RefCell::new(Vec::new()),
            ran: RefCell::new(Vec::new()),
        };
        let plan = drill(60_000, 3_600_000);
        let request = DrillRequest {
            name: "restore_db",
            drill: &plan,
            pipeline: "p",
            store: &store,
            workdir: dir.path(),
            run_id: "r1",
            actor: "alice",
            from: None,
            clock: Clock::default(),
        };
        let refused = run_drill(&request, &host, &audit).unwrap_err().to_string();
        assert!(refused.contains("deploy-run"), "{refused}");
        assert!(host.ran.borrow().is_empty(), "nothing ran");
        assert!(!dir.path().join("evidence").exists());
    }

    #[test]
    fn backup_times_read_as_unix_seconds_or_rfc_3339() {
        let expected = DateTime::from_timestamp(1_700_000_000, 0);
        assert_eq!(parse_time("1700000000"), expected);
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), expected);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_clock_set_to_an_instant_moves_on_from_it() {
        let then = parse_time("2026-01-01T00:00:00Z").unwrap();
        let clock = Clock::starting_at(then);
        let read = clock.now();
        assert!(read >= then && read - then < chrono::TimeDelta::seconds(5));
    }
}
