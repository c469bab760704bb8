//! The delivery record of one promote in one run (kept by the store beside the run's state):
//! approvals granted so far, the rollback target, every watch sample and every decision, so a
//! resumed run keeps its approvals and `pipe audit show`/`pipe plan` can say why it rolled back.

use crate::deliver::ledger::Release;
use crate::deliver::watch::{Decision, Sample};
use crate::store::{RunDoc, Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub environment: String,
    pub version: String,
    pub digest: String,
    /// Distinct approvers whose approval counted, in order.
    #[serde(default)]
    pub approvals: Vec<String>,
    /// The rollback target decided before the deploy (none for a first release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Release>,
    #[serde(default)]
    pub samples: Vec<Sample>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PromoteEnd>,
}

/// How an attempt at the promote ended, as the record stores it (`"rolled_back"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromoteEnd {
    Succeeded,
    RolledBack,
    RollbackFailed,
    AwaitingApproval,
    Failed,
    Interrupted,
}

impl DeliveryRecord {
    /// The record saved by an earlier attempt of this run (approvals survive a resume), or a
    /// fresh one. An unreadable record starts fresh: it only ever holds evidence.
    pub fn load_or_new(store: &Store, run: &str, environment: &str) -> DeliveryRecord {
        let doc = RunDoc::Delivery(environment.to_string());
        store
            .state()
            .read_run_doc(run, &doc)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| DeliveryRecord {
                environment: environment.to_string(),
                ..DeliveryRecord::default()
            })
    }

    pub fn save(&self, store: &Store, run: &str) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Corrupt {
            what: format!("the delivery record of {}", self.environment),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        let doc = RunDoc::Delivery(self.environment.clone());
        store.state().write_run_doc(run, &doc, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_keeps_its_json_words() {
        let old = r#"{"environment":"prod","version":"v1","digest":"d","outcome":"rolled_back"}"#;
        let record: DeliveryRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.outcome, Some(PromoteEnd::RolledBack));
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written["outcome"], "rolled_back");
    }

    #[test]
    fn approvals_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::directory(dir.path());
        let mut record = DeliveryRecord::load_or_new(&store, "r1", "prod");
        record.approvals.push("alice".to_string());
        record.save(&store, "r1").unwrap();
        let again = DeliveryRecord::load_or_new(&store, "r1", "prod");
        assert_eq!(again.approvals, vec!["alice".to_string()]);
        assert_eq!(again.environment, "prod");
    }
}
