//! Evidence: the audit log's releases, gates, approvals, overrides, rollbacks and drills
//! gathered into one report for an auditor (`pipe evidence`), as Markdown or JSON.
//! Built only from a log whose chain verified; the report names the chain's last hash.

use super::drills::{self, DeclaredDrills, DrillSummary};
use super::event::AuditEvent;
use super::record::AuditRecord;
use super::timeline::details;
use serde_json::{Value, json};

/// The JSON report's format.
pub const EVIDENCE_SCHEMA: &str = "pipe.evidence/v1";

/// A section of the report, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Releases,
    Gates,
    Approvals,
    Overrides,
    Rollbacks,
    Drills,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Releases,
        Section::Gates,
        Section::Approvals,
        Section::Overrides,
        Section::Rollbacks,
        Section::Drills,
    ];

    /// The section's key in the JSON report and its Markdown title.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Section::Releases => ("releases", "Releases"),
            Section::Gates => ("gates", "Gates"),
            Section::Approvals => ("approvals", "Approvals"),
            Section::Overrides => ("overrides", "Overrides"),
            Section::Rollbacks => ("rollbacks", "Rollbacks"),
            Section::Drills => ("drills", "Drills"),
        }
    }
}

/// The section that reports `event`, or `None` for the events an auditor's report leaves
/// out (the run's own progress, samples and bookkeeping: `pipe audit show` lists them).
/// Exhaustive on purpose: a new event does not compile until it is placed here.
fn section_of(event: AuditEvent) -> Option<Section> {
    use AuditEvent as E;
    match event {
        E::DeploymentPromoted
        | E::ReleaseAbandoned
        | E::ArtifactVerificationFailed
        | E::ReleaseUnrecorded
        | E::LockLost => Some(Section::Releases),
        E::GatePassed | E::GateFailed => Some(Section::Gates),
        E::ApprovalGranted | E::ApprovalRefused | E::StagingFirstRefused => {
            Some(Section::Approvals)
        }
        E::GateOverridden => Some(Section::Overrides),
        E::RollbackRequested
        | E::RollbackTriggered
        | E::RollbackStarted
        | E::RollbackSkipped
        | E::RollbackFinished
        | E::RollbackFailed
        | E::RecoveryVerified
        | E::RecoveryFailed => Some(Section::Rollbacks),
        E::DrillFinished => Some(Section::Drills),
        E::RunStarted
        | E::RunFinished
        | E::ResumeForced
        | E::GcFinished
        | E::ArtifactStored
        | E::LockAcquired
        | E::PreviousStableRecorded
        | E::MigrationStarted
        | E::DeployStarted
        | E::SmokeFailed
        | E::WatchSample
        | E::WatchWarning
        | E::RepromoteAfterInterrupt
        | E::RollbackResumed
        | E::DrillStarted
        | E::LogRecovered => None,
    }
}

/// The events that each stand for one item of their section (one release, one rollback, one
/// drill…); the others (a rollback's trigger, finish and verification) are its details.
fn is_item(event: AuditEvent) -> bool {
    use AuditEvent as E;
    matches!(
        event,
        E::DeploymentPromoted
            | E::GatePassed
            | E::GateFailed
            | E::ApprovalGranted
            | E::ApprovalRefused
            | E::StagingFirstRefused
            | E::GateOverridden
            | E::RollbackStarted
            | E::RollbackSkipped
            | E::DrillFinished
    )
}

/// A section's count for the summary: its items, and its events too when they differ
/// (one rollback is four events: triggered, started, finished, verified).
fn headline(records: &[&AuditRecord]) -> String {
    let items = records
        .iter()
        .filter(|record| record.kind().is_some_and(is_item))
        .count();
    match records.len() {
        events if events == items => items.to_string(),
        1 => format!("{items} (1 event)"),
        events => format!("{items} ({events} events)"),
    }
}

/// The chain the report was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub events: usize,
    pub last_hash: String,
}

/// The report: the period it covers and, per section, the records in log order; per drill, its
/// runs and schedule as they stand at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence<'r> {
    pub since: Option<String>,
    pub chain: Chain,
    pub sections: Vec<(&'static str, &'static str, Vec<&'r AuditRecord>)>,
    pub drills: Vec<DrillSummary>,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Gathers the records at or after `since` (an RFC 3339 time; `None`: all) into sections,
/// judging the drills' schedules at `now`.
pub fn gather_at<'r>(
    records: &'r [AuditRecord],
    since: Option<&chrono::DateTime<chrono::Utc>>,
    chain: Chain,
    now: chrono::DateTime<chrono::Utc>,
    declared: Option<&DeclaredDrills>,
) -> Evidence<'r> {
    let in_period = |record: &AuditRecord| match since {
        None => true,
        Some(since) => chrono::DateTime::parse_from_rfc3339(&record.ts)
            .is_ok_and(|ts| ts.with_timezone(&chrono::Utc) >= *since),
    };
    let sections = Section::ALL
        .iter()
        .map(|&section| {
            let chosen = records
                .iter()
                .filter(|r| r.kind().and_then(section_of) == Some(section) && in_period(r))
                .collect();
            let (key, title) = section.names();
            (key, title, chosen)
        })
        .collect();
    Evidence {
        since: since.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        chain,
        sections,
        drills: drills::summarize(records, &in_period, now, declared),
        now,
    }
}

impl Evidence<'_> {
    pub fn to_json(&self) -> Value {
        let sections: serde_json::Map<String, Value> = self
            .sections
            .iter()
            .map(|(key, _, records)| {
                let list = records.iter().map(|r| r.to_json()).collect();
                ((*key).to_string(), Value::Array(list))
            })
            .collect();
        json!({
            "schema": EVIDENCE_SCHEMA,
            "since": self.since,
            "chain": {"verified": true, "events": self.chain.events, "last_hash": self.chain.last_hash},
            "sections": sections,
            "drill_summary": self.drills.iter().map(|d| d.to_json(self.now)).collect::<Vec<_>>(),
        })
    }

    pub fn to_markdown(&self, pipeline_dir: &str) -> String {
        let mut out = format!("# Delivery evidence: {pipeline_dir}\n\n");
        out.push_str(&format!(
            "- Period: {}\n- Audit log: {} events, hash chain verified; last hash `{}`\n",
            self.since
                .as_ref()
                .map_or("the whole log".to_string(), |s| format!("since {s}")),
            self.chain.events,
            self.chain.last_hash
        ));
        for (_, title, records) in &self.sections {
            out.push_str(&format!("- {title}: {}\n", headline(records)));
        }
        for (key, title, records) in &self.sections {
            out.push_str(&format!("\n## {title}\n\n"));
            if *key == "drills" && !self.drills.is_empty() {
                out.push_str(&drills::markdown_table(&self.drills, self.now));
                out.push('\n');
            }
            if records.is_empty() {
                out.push_str("None in this period.\n");
                continue;
            }
            out.push_str("| time | run | actor | environment | event | details |\n");
            out.push_str("|---|---|---|---|---|---|\n");
            for record in records {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    cell(&record.ts),
                    cell(&record.run),
                    cell(&record.actor),
                    cell(record.environment().unwrap_or("")),
                    cell(&record.event),
                    cell(&details(record)),
                ));
            }
        }
        out
    }
}

/// Table cell text: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn gather<'r>(
        records: &'r [AuditRecord],
        since: Option<&chrono::DateTime<chrono::Utc>>,
        chain: Chain,
    ) -> Evidence<'r> {
        gather_at(records, since, chain, chrono::Utc::now(), None)
    }

    fn record(seq: u64, ts: &str, event: &str, fields: Value) -> AuditRecord {
        let Value::Object(fields) = fields else {
            panic!("not an object")
        };
        AuditRecord {
            line: seq as usize,
            seq,
            ts: ts.into(),
            run: "r1".into(),
            event: event.into(),
            actor: "alice".into(),
            fields,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn log() -> Vec<AuditRecord> {
        vec![
            record(1, "2026-11-01T10:00:00Z", "run_started", json!({})),
            record(
                2,
                "2026-11-01T10:01:00Z",
                "gate_overridden",
                json!({"gate": "coverage", "reason": "flaky | known", "approver": "bob"}),
            ),
            record(
                3,
                "2026-11-20T09:00:00Z",
                "deployment_promoted",
                json!({"environment": "staging", "version": "1.4.0", "digest": "ab12"}),
            ),
            record(
                4,
                "2026-11-20T09:05:00Z",
                "rollback_triggered",
                json!({"environment": "staging", "summary": "error_rate 5% > 1% held 30s"}),
            ),
            record(
                5,
                "2026-11-21T08:00:00Z",
                "drill_finished",
                json!({"environment": "staging", "summary": "drill restore_db passed", "outcome": "passed"}),
            ),
        ]
    }

    fn chain() -> Chain {
        Chain {
            events: 5,
            last_hash: "f00d".into(),
        }
    }

    fn section<'e>(evidence: &'e Evidence, key: &str) -> &'e [&'e AuditRecord] {
        &evidence
            .sections
            .iter()
            .find(|(k, _, _)| *k == key)
            .unwrap()
            .2
    }

    #[test]
    fn events_land_in_their_sections_and_others_are_left_out() {
        let records = log();
        let evidence = gather(&records, None, chain());
        assert_eq!(section(&evidence, "overrides").len(), 1);
        assert_eq!(section(&evidence, "releases")[0].seq, 3);
        assert_eq!(section(&evidence, "rollbacks")[0].seq, 4);
        assert_eq!(section(&evidence, "drills")[0].seq, 5);
        let all: usize = evidence.sections.iter().map(|(_, _, r)| r.len()).sum();
        assert_eq!(all, 4, "run_started belongs to no section");
    }

    /// The backticked event names in the documented row of one section.
    fn documented(title: &str) -> BTreeSet<String> {
        let docs = include_str!("../../docs/audit.md");
        let row = docs
            .lines()
            .find(|line| line.starts_with(&format!("| {title} |")))
            .unwrap();
        row.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn each_section_gathers_exactly_the_documented_events() {
        for section in Section::ALL {
            let (_, title) = section.names();
            let reported: BTreeSet<String> = AuditEvent::ALL
                .iter()
                .filter(|&&event| section_of(event) == Some(section))
                .map(|event| event.as_str().to_string())
                .collect();
            assert_eq!(reported, documented(title), "{title}");
        }
    }

    #[test]
    fn an_unknown_event_name_is_kept_out_of_every_section() {
        let records = vec![record(
            1,
            "2026-11-01T10:00:00Z",
            "deployment_promotedd",
            json!({"environment": "staging"}),
        )];
        let evidence = gather(&records, None, chain());
        assert!(evidence.sections.iter().all(|(_, _, r)| r.is_empty()));
    }

    #[test]
    fn the_summary_counts_rollbacks_not_their_events() {
        let records = [
            ("rollback_triggered", json!({"environment": "staging"})),
            ("rollback_started", json!({"environment": "staging"})),
            ("rollback_finished", json!({"environment": "staging"})),
            ("recovery_verified", json!({"environment": "staging"})),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (event, fields))| record(i as u64 + 1, "2026-11-20T09:05:00Z", event, fields))
        .collect::<Vec<_>>();
        let text = gather(&records, None, chain()).to_markdown("shop");
        assert!(text.contains("- Rollbacks: 1 (4 events)\n"), "{text}");
        assert!(text.contains("- Releases: 0\n"), "{text}");
    }

    #[test]
    fn since_keeps_only_the_period() {
        let records = log();
        let since = chrono::DateTime::parse_from_rfc3339("2026-11-20T09:01:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let evidence = gather(&records, Some(&since), chain());
        assert!(section(&evidence, "overrides").is_empty());
        assert!(section(&evidence, "releases").is_empty());
        assert_eq!(section(&evidence, "rollbacks").len(), 1);
        assert_eq!(evidence.to_json()["since"], "2026-11-20T09:01:00Z");
    }

    #[test]
    fn markdown_names_the_chain_and_escapes_table_cells() {
        let records = log();
        let text = gather(&records, None, chain()).to_markdown("shop");
        assert!(
            text.contains("5 events, hash chain verified; last hash `f00d`"),
            "{text}"
        );
        assert!(text.contains("- Overrides: 1"), "{text}");
        assert!(text.contains("flaky \\| known  approver=bob"), "{text}");
        assert!(text.contains("## Gates\n\nNone in this period."), "{text}");
    }

    fn drill_run(
        seq: u64,
        day: u32,
        outcome: &str,
        restore_ms: u64,
        age_ms: u64,
        digest: &str,
    ) -> AuditRecord {
        let ts = format!("2026-11-{day:02}T02:00:00Z");
        let failures: Vec<&str> = if outcome == "passed" {
            Vec::new()
        } else {
            vec!["the restored backup was 1d2h old, over the RPO of 1d"]
        };
        record(
            seq,
            &ts,
            "drill_finished",
            json!({
                "environment": "production", "drill": "restore_orders", "pipeline": "shop",
                "outcome": outcome, "finished_at": ts, "rto_ms": 900_000, "rpo_ms": 86_400_000,
                "every_ms": 30 * 86_400_000u64, "restore_ms": restore_ms, "backup_age_ms": age_ms,
                "failures": failures,
                "backup": {"digest": digest, "size": 48_213, "created_at": "2026-11-01T01:00:00Z"},
                "summary": format!("drill restore_orders {outcome}"),
            }),
        )
    }

    /// The drills section an auditor reads: per drill, its runs in the period, the worst
    /// measured restore and backup age against the targets, the backups restored, and a drill
    /// whose `every` ran out since its last pass flagged as overdue.
    #[test]
    fn the_drills_section_summarises_each_drill_and_flags_an_overdue_one() {
        let a = "sha256:0e66467642f9af3e9ff2e89ea67f89a2fc97ec50eebf3c529d824e36c2116427";
        let b = "sha256:9b1c0a5d7e2f4c3b8a6d5e4f3c2b1a0987654321fedcba9876543210abcdef01";
        let mut staging = drill_run(4, 20, "passed", 2_400, 3_600_000, b);
        staging
            .fields
            .insert("drill".into(), json!("restore_staging"));
        staging
            .fields
            .insert("environment".into(), json!("staging"));
        staging.fields.remove("every_ms");
        let records = vec![
            drill_run(1, 1, "passed", 41_250, 3_600_400, a),
            drill_run(2, 2, "failed", 39_800, 93_600_250, a),
            drill_run(3, 2, "passed", 40_100, 7_200_900, b),
            staging,
        ];
        let now = drills::parse_time("2026-12-05T00:00:00Z").unwrap();
        let text = gather_at(&records, None, chain(), now, None).to_markdown("shop");
        let section = &text[text.find("## Drills").unwrap()..];
        insta::assert_snapshot!(section);
        let json = gather_at(&records, None, chain(), now, None).to_json();
        assert_eq!(json["drill_summary"][0]["overdue"], true);
        assert_eq!(json["drill_summary"][0]["backup_digests"], json!([a, b]));
        assert_eq!(json["drill_summary"][1]["overdue"], false);
    }

    /// A drill the pipeline declares but that never ran is in the report, due, not left out.
    #[test]
    fn a_declared_drill_that_never_ran_is_listed_as_due() {
        let a = "sha256:0e66467642f9af3e9ff2e89ea67f89a2fc97ec50eebf3c529d824e36c2116427";
        let records = vec![drill_run(1, 1, "passed", 41_250, 3_600_400, a)];
        let declared = DeclaredDrills {
            pipeline: "shop",
            drills: vec![
                drills::Declared {
                    name: "restore_orders",
                    environment: "production",
                    every_ms: Some(30 * 86_400_000),
                },
                drills::Declared {
                    name: "restore_payments",
                    environment: "production",
                    every_ms: Some(30 * 86_400_000),
                },
            ],
        };
        let now = drills::parse_time("2026-11-10T00:00:00Z").unwrap();
        let json = gather_at(&records, None, chain(), now, Some(&declared)).to_json();
        let summary = json["drill_summary"].as_array().unwrap();
        assert_eq!(summary.len(), 2, "{summary:?}");
        assert_eq!(summary[0]["drill"], "restore_orders");
        assert_eq!(summary[0]["overdue"], false);
        assert_eq!(summary[1]["drill"], "restore_payments");
        assert_eq!(summary[1]["runs"], 0);
        assert_eq!(summary[1]["overdue"], true);
        let text = gather_at(&records, None, chain(), now, Some(&declared)).to_markdown("shop");
        assert!(
            text.contains("| restore_payments | production | 0 (0) |"),
            "{text}"
        );
    }
}
