//! `pipe drill --status` and `--due`: each drill's standing from the verified audit log, and
//! the clock they are judged by (`PIPE_NOW`, a testing hook read here and nowhere else).

use super::OutputFormat;
use super::exit;
use super::report::{self, CliError};
use crate::audit::drills::{Declared, DrillStanding, parse_time, standings};
use crate::audit::{AuditRecord, VerifyError};
use crate::compile::plan::Plan;
use crate::deliver::drill::{Clock, rfc3339};
use crate::deliver::probe_value::format_duration;
use crate::store::Store;
use chrono::{DateTime, Utc};

/// The real clock, or with `PIPE_NOW=RFC3339` one that starts at that instant: how tests walk
/// drills through a simulated month without sleeping.
pub(super) fn clock_from_env() -> Result<Clock, CliError> {
    match std::env::var("PIPE_NOW") {
        Err(_) => Ok(Clock::default()),
        Ok(text) => parse_time(&text)
            .map(Clock::starting_at)
            .ok_or(CliError::BadClock(text)),
    }
}

/// The `drill_finished` records of a log whose chain verifies (none when there is no log yet):
/// a schedule must not trust a pass that was written in by hand.
fn verified_records(store: &Store) -> Result<Vec<AuditRecord>, CliError> {
    match store.verify_audit() {
        Ok(_) => {}
        Err(VerifyError::Missing(_)) => return Ok(Vec::new()),
        Err(error) => return Err(CliError::AuditUnverified(error)),
    }
    store.audit_records().map_err(CliError::AuditUnreadable)
}

fn plan_standings(plan: &Plan, records: &[AuditRecord], now: DateTime<Utc>) -> Vec<DrillStanding> {
    let declared: Vec<Declared> = plan
        .drills
        .iter()
        .map(|(name, drill)| Declared {
            name,
            environment: &drill.environment,
            every_ms: drill.every_ms,
        })
        .collect();
    standings(&plan.pipeline, &declared, records, now)
}

/// The drills `--due` runs, by name.
pub(super) fn due_drills(
    plan: &Plan,
    store: &Store,
    clock: Clock,
) -> Result<Vec<String>, CliError> {
    let records = verified_records(store)?;
    Ok(plan_standings(plan, &records, clock.now())
        .into_iter()
        .filter(|s| s.due)
        .map(|s| s.drill)
        .collect())
}

/// `pipe drill --status`: exit 1 when any drill is due (overdue or never passed).
pub fn status(plan: &Plan, store: &Store, clock: Clock, format: OutputFormat) -> i32 {
    let records = match verified_records(store) {
        Ok(records) => records,
        Err(error) => return report::error(error),
    };
    let now = clock.now();
    let standings = plan_standings(plan, &records, now);
    match format {
        OutputFormat::Json => match serde_json::to_string(&status_json(&standings, now)) {
            Ok(line) => println!("{line}"),
            Err(error) => return report::error(error),
        },
        OutputFormat::Text => print!("{}", status_table(&standings, now)),
    }
    if standings.iter().any(|s| s.due) {
        exit::FAILED
    } else {
        exit::SUCCESS
    }
}

fn status_json(standings: &[DrillStanding], now: DateTime<Utc>) -> serde_json::Value {
    let time = |t: Option<DateTime<Utc>>| t.map(rfc3339);
    standings
        .iter()
        .map(|s| {
            serde_json::json!({
                "drill": s.drill,
                "environment": s.environment,
                "every_ms": s.every_ms,
                "last_pass": time(s.last_pass),
                "last_failure": time(s.last_failure),
                "age_ms": s.age_ms(now),
                "due_at": time(s.due_at),
                "due": s.due,
                "status": s.due_text(now),
            })
        })
        .collect()
}

fn status_table(standings: &[DrillStanding], now: DateTime<Utc>) -> String {
    if standings.is_empty() {
        return "no drills in this pipeline\n".to_string();
    }
    let when = |time: Option<DateTime<Utc>>| {
        time.map_or("never".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    let drill_width = standings
        .iter()
        .map(|s| s.drill.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let env_width = standings
        .iter()
        .map(|s| s.environment.len())
        .max()
        .unwrap_or(0)
        .max(11);
    let row = |cells: [&str; 7]| {
        format!(
            "{:<drill_width$}  {:<env_width$}  {:<6}  {:<20}  {:<20}  {:<6}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )
    };
    let mut out = row([
        "drill",
        "environment",
        "every",
        "last pass",
        "last failure",
        "age",
        "status",
    ]);
    for s in standings {
        let every = s.every_ms.map_or("-".to_string(), format_duration);
        out.push_str(&row([
            &s.drill,
            &s.environment,
            &every,
            &when(s.last_pass),
            &when(s.last_failure),
            &s.age_text(now),
            &s.due_text(now),
        ]));
    }
    out
}
