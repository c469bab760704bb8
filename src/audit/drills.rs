//! When each drill falls due: its last pass and last failure read from the audit log's
//! `drill_finished` records, judged against its `every` at a given time (`pipe drill --status`
//! and `--due`, and the evidence report's overdue flags).

use super::{AuditEvent, AuditRecord};
use crate::compile::expr::format_duration;
use chrono::{DateTime, Utc};

/// A time as a drill records it: Unix seconds or RFC 3339 (a backup block's `backup_time=`,
/// a report's `finished_at`).
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(seconds) = value.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Where one drill stands at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillStanding {
    pub drill: String,
    pub environment: String,
    pub every_ms: Option<u64>,
    /// When the drill last finished with `passed` / `failed` (or was interrupted).
    pub last_pass: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// When it must pass again: its last pass plus `every`; `None` when it has no `every`
    /// (or has never passed, which makes it due at once).
    pub due_at: Option<DateTime<Utc>>,
    /// Never passed, or its `every` has run out since the last pass.
    pub due: bool,
}

impl DrillStanding {
    /// Time since the last pass.
    /// Time since the last pass, to the largest whole unit ("12d", "5h").
    pub fn age_text(&self, now: DateTime<Utc>) -> String {
        self.age_ms(now).map_or("-".to_string(), coarse_duration)
    }

    pub fn age_ms(&self, now: DateTime<Utc>) -> Option<u64> {
        self.last_pass.map(|pass| millis_between(pass, now))
    }

    /// "due now (never passed)", "overdue by 2d", "due in 3d".
    pub fn due_text(&self, now: DateTime<Utc>) -> String {
        match (self.last_pass, self.due_at) {
            (None, _) => "due now (never passed)".to_string(),
            (Some(_), None) => "no schedule (no `every`)".to_string(),
            (Some(_), Some(at)) if at <= now => {
                format!("overdue by {}", coarse_duration(millis_between(at, now)))
            }
            (Some(_), Some(at)) => format!("due in {}", coarse_duration(millis_between(now, at))),
        }
    }
}

/// A drill as the pipeline declares it.
pub struct Declared<'a> {
    pub name: &'a str,
    pub environment: &'a str,
    pub every_ms: Option<u64>,
}

/// Each declared drill's standing at `now`, from the `drill_finished` records of `pipeline`.
/// A drill's times are the ones it recorded (`finished_at`), so a test clock carries through.
pub fn standings(
    pipeline: &str,
    declared: &[Declared],
    records: &[AuditRecord],
    now: DateTime<Utc>,
) -> Vec<DrillStanding> {
    declared
        .iter()
        .map(|drill| {
            let finished = finished_runs(pipeline, drill.name, records);
            let last = |passed: bool| {
                finished
                    .iter()
                    .filter(|(_, p)| *p == passed)
                    .map(|(at, _)| *at)
                    .max()
            };
            let last_pass = last(true);
            let due_at = last_pass
                .zip(drill.every_ms)
                .map(|(pass, every)| pass + chrono::TimeDelta::milliseconds(saturating_i64(every)));
            DrillStanding {
                drill: drill.name.to_string(),
                environment: drill.environment.to_string(),
                every_ms: drill.every_ms,
                last_pass,
                last_failure: last(false),
                due_at,
                due: last_pass.is_none() || due_at.is_some_and(|at| at <= now),
            }
        })
        .collect()
}

/// When each run of the drill finished and whether it passed.
fn finished_runs(
    pipeline: &str,
    drill: &str,
    records: &[AuditRecord],
) -> Vec<(DateTime<Utc>, bool)> {
    records
        .iter()
        .filter(|r| r.kind() == Some(AuditEvent::DrillFinished))
        .filter(|r| r.field_str("drill") == Some(drill))
        .filter(|r| r.field_str("pipeline").is_none_or(|p| p == pipeline))
        .filter_map(|r| {
            let at = r.field_str("finished_at").and_then(parse_time)?;
            Some((at, r.field_str("outcome") == Some("passed")))
        })
        .collect()
}

/// A schedule's distances: the largest whole unit, rounded down ("20d", "5h", "3m", "12s").
pub fn coarse_duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    UNITS.iter().find(|(size, _)| ms >= *size).map_or_else(
        || format!("{ms}ms"),
        |(size, unit)| format!("{}{unit}", ms / size),
    )
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One drill in the evidence report: its runs in the period, the worst measured times against
/// the targets, the backups restored, and where its schedule stands at the time of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillSummary {
    pub drill: String,
    pub environment: String,
    pub runs: usize,
    pub passed: usize,
    pub worst_restore_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub worst_backup_age_ms: Option<u64>,
    pub rpo_ms: Option<u64>,
    /// `sha256:HEX` of each stored backup restored in the period, first use first.
    pub digests: Vec<String>,
    pub standing: DrillStanding,
}

/// The drills a pipeline declares, for the evidence report: a drill that never ran is listed too.
pub struct DeclaredDrills<'a> {
    pub pipeline: &'a str,
    pub drills: Vec<Declared<'a>>,
}

/// Every drill with a `drill_finished` record in the log, summarised over the records `in_period`,
/// then every `declared` drill that has none (never run: due at once); the schedule (`every`,
/// last pass) is read from the whole log, as it stands at `now`.
pub fn summarize(
    records: &[AuditRecord],
    in_period: &dyn Fn(&AuditRecord) -> bool,
    now: DateTime<Utc>,
    declared: Option<&DeclaredDrills>,
) -> Vec<DrillSummary> {
    let mut summaries = summarize_recorded(records, in_period, now);
    if let Some(declared) = declared {
        for drill in &declared.drills {
            if !summaries.iter().any(|s| s.drill == drill.name) {
                summaries.push(never_run(declared.pipeline, drill, records, now));
            }
        }
    }
    summaries
}

/// A declared drill with no `drill_finished` record: no runs, due since it never passed.
fn never_run(
    pipeline: &str,
    drill: &Declared,
    records: &[AuditRecord],
    now: DateTime<Utc>,
) -> DrillSummary {
    DrillSummary {
        drill: drill.name.to_string(),
        runs: 0,
        passed: 0,
        worst_restore_ms: None,
        rto_ms: None,
        worst_backup_age_ms: None,
        rpo_ms: None,
        digests: Vec::new(),
        environment: drill.environment.to_string(),
        standing: standings(pipeline, std::slice::from_ref(drill), records, now).remove(0),
    }
}

fn summarize_recorded(
    records: &[AuditRecord],
    in_period: &dyn Fn(&AuditRecord) -> bool,
    now: DateTime<Utc>,
) -> Vec<DrillSummary> {
    let finished: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.kind() == Some(AuditEvent::DrillFinished))
        .collect();
    let mut names: Vec<(&str, &str)> = finished
        .iter()
        .filter_map(|r| Some((r.field_str("pipeline").unwrap_or(""), r.field_str("drill")?)))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|(pipeline, drill)| {
            let mine: Vec<&AuditRecord> = finished
                .iter()
                .copied()
                .filter(|r| r.field_str("drill") == Some(drill))
                .filter(|r| r.field_str("pipeline").unwrap_or("") == pipeline)
                .collect();
            summary_of(pipeline, drill, &mine, in_period, records, now)
        })
        .collect()
}

fn summary_of(
    pipeline: &str,
    drill: &str,
    mine: &[&AuditRecord],
    in_period: &dyn Fn(&AuditRecord) -> bool,
    records: &[AuditRecord],
    now: DateTime<Utc>,
) -> DrillSummary {
    let number = |r: &AuditRecord, key: &str| r.fields.get(key).and_then(serde_json::Value::as_u64);
    let latest = mine.last();
    let period: Vec<&AuditRecord> = mine.iter().copied().filter(|r| in_period(r)).collect();
    let mut digests: Vec<String> = Vec::new();
    for record in &period {
        let digest = record
            .fields
            .get("backup")
            .and_then(|b| b.get("digest"))
            .and_then(|d| d.as_str());
        if let Some(digest) = digest.filter(|d| !digests.iter().any(|seen| seen == d)) {
            digests.push(digest.to_string());
        }
    }
    let environment = latest
        .and_then(|r| r.environment())
        .unwrap_or("")
        .to_string();
    let declared = Declared {
        name: drill,
        environment: &environment,
        every_ms: latest.and_then(|r| number(r, "every_ms")),
    };
    let standing = standings(pipeline, &[declared], records, now).remove(0);
    DrillSummary {
        drill: drill.to_string(),
        runs: period.len(),
        passed: period
            .iter()
            .filter(|r| r.field_str("outcome") == Some("passed"))
            .count(),
        worst_restore_ms: period.iter().filter_map(|r| number(r, "restore_ms")).max(),
        rto_ms: latest.and_then(|r| number(r, "rto_ms")),
        worst_backup_age_ms: period
            .iter()
            .filter_map(|r| number(r, "backup_age_ms"))
            .max(),
        rpo_ms: latest.and_then(|r| number(r, "rpo_ms")),
        digests,
        environment,
        standing,
    }
}

impl DrillSummary {
    /// "OVERDUE by 5d", "due in 12d", "no schedule (no `every`)".
    pub fn schedule_text(&self, now: DateTime<Utc>) -> String {
        let text = self.standing.due_text(now);
        if self.standing.due && self.standing.every_ms.is_some() {
            match text.strip_prefix("overdue") {
                Some(rest) => format!("**OVERDUE**{rest}"),
                None => format!("**OVERDUE**: {text}"),
            }
        } else {
            text
        }
    }

    pub fn to_json(&self, now: DateTime<Utc>) -> serde_json::Value {
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        serde_json::json!({
            "drill": self.drill,
            "environment": self.environment,
            "runs": self.runs,
            "passed": self.passed,
            "worst_restore_ms": self.worst_restore_ms,
            "rto_ms": self.rto_ms,
            "worst_backup_age_ms": self.worst_backup_age_ms,
            "rpo_ms": self.rpo_ms,
            "backup_digests": self.digests,
            "every_ms": self.standing.every_ms,
            "last_pass": time(self.standing.last_pass),
            "due_at": time(self.standing.due_at),
            "overdue": self.standing.due && self.standing.every_ms.is_some(),
            "status": self.standing.due_text(now),
        })
    }
}

/// The Markdown table of the drills, one row per drill.
pub fn markdown_table(summaries: &[DrillSummary], now: DateTime<Utc>) -> String {
    let mut out = String::from(
        "| drill | environment | runs (passed) | worst restore / RTO | worst backup age / RPO | backups restored | last pass | schedule |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let shown = |v: Option<u64>| v.map_or("-".to_string(), format_duration);
    let measured =
        |value: Option<u64>, target: Option<u64>| format!("{} / {}", shown(value), shown(target));
    // An age is shown to the second: its milliseconds are the clock's, not the backup's.
    let to_second = |v: Option<u64>| v.map(|ms| ms - ms % 1000);
    for s in summaries {
        let digests: Vec<String> = s.digests.iter().map(|d| format!("`{d}`")).collect();
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} |\n",
            s.drill,
            s.environment,
            s.runs,
            s.passed,
            measured(s.worst_restore_ms, s.rto_ms),
            measured(to_second(s.worst_backup_age_ms), s.rpo_ms),
            if digests.is_empty() {
                "-".to_string()
            } else {
                digests.join(", ")
            },
            s.standing.last_pass.map_or("never".to_string(), |t| t
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            s.schedule_text(now),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(seq: u64, drill: &str, outcome: &str, at: &str) -> AuditRecord {
        let serde_json::Value::Object(fields) = json!({
            "drill": drill, "pipeline": "shop", "outcome": outcome, "finished_at": at,
        }) else {
            unreachable!()
        };
        AuditRecord {
            line: seq as usize,
            seq,
            ts: "2026-11-01T00:00:00Z".into(),
            run: "r".into(),
            event: "drill_finished".into(),
            actor: "a".into(),
            fields,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    const DAY: u64 = 86_400_000;

    #[test]
    fn a_drill_is_due_when_it_never_passed_or_its_every_ran_out() {
        let records = [
            finished(1, "db", "passed", "2026-11-01T00:00:00Z"),
            finished(2, "db", "failed", "2026-11-20T00:00:00Z"),
            finished(3, "files", "failed", "2026-11-02T00:00:00Z"),
        ];
        let declared = [
            Declared {
                name: "db",
                environment: "staging",
                every_ms: Some(30 * DAY),
            },
            Declared {
                name: "files",
                environment: "staging",
                every_ms: Some(30 * DAY),
            },
        ];
        let on = |now| standings("shop", &declared, &records, at(now));
        let early = on("2026-11-25T00:00:00Z");
        assert!(!early[0].due);
        assert_eq!(early[0].last_failure, Some(at("2026-11-20T00:00:00Z")));
        assert_eq!(early[0].due_text(at("2026-11-25T00:00:00Z")), "due in 6d");
        assert!(early[1].due, "never passed");
        let late = on("2026-12-02T00:00:00Z");
        assert!(late[0].due);
        assert_eq!(
            late[0].due_text(at("2026-12-02T00:00:00Z")),
            "overdue by 1d"
        );
        assert_eq!(late[0].age_text(at("2026-12-02T00:00:00Z")), "31d");
        assert_eq!(coarse_duration(DAY + 1), "1d");
        assert_eq!(coarse_duration(90 * 60_000), "1h");
        assert_eq!(coarse_duration(999), "999ms");
    }

    #[test]
    fn a_drill_without_every_is_due_only_until_it_passes_and_other_pipelines_do_not_count() {
        let records = [finished(1, "db", "passed", "2026-11-01T00:00:00Z")];
        let declared = [Declared {
            name: "db",
            environment: "staging",
            every_ms: None,
        }];
        let now = at("2027-11-01T00:00:00Z");
        assert!(!standings("shop", &declared, &records, now)[0].due);
        assert!(standings("other", &declared, &records, now)[0].due);
    }
}
