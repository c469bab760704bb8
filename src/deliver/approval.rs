//! Approval policy: who is approving (`--approver`, then `$PIPE_APPROVER`, then `$USER`),
//! whether they may, and whether the quorum of distinct approvers is met. Pure: the caller
//! supplies the environment variables and the approvals recorded so far.

use crate::compile::plan::ApprovalPlan;
use std::fmt;

/// Picks the approver's name: the flag first, then `$PIPE_APPROVER`, then `$USER`. Blank
/// values count as absent.
pub fn resolve_approver(
    flag: Option<&str>,
    pipe_approver_var: Option<&str>,
    user_var: Option<&str>,
) -> Option<String> {
    [flag, pipe_approver_var, user_var]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|name| !name.is_empty())
        .map(str::to_string)
}

/// Why an approval was not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The block lists approvers and this name is not among them.
    NotAnApprover {
        approver: String,
        allowed: Vec<String>,
    },
    /// The run's initiator approving their own run without `allow_self`.
    SelfApproval { approver: String },
    /// Quorum counts distinct people; a second approval by the same name adds nothing.
    AlreadyApproved { approver: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAnApprover { approver, allowed } => write!(
                f,
                "{approver} is not an approver here (approvers: {})",
                allowed.join(", ")
            ),
            Refusal::SelfApproval { approver } => write!(
                f,
                "{approver} started this run and cannot approve it (the approval block does not say allow_self = true)"
            ),
            Refusal::AlreadyApproved { approver } => write!(
                f,
                "{approver} has already approved; the quorum needs distinct approvers"
            ),
        }
    }
}

/// An approval that counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub approver: String,
    /// Distinct approvals so far, this one included.
    pub count: u32,
    pub quorum: u32,
}

#[cfg(test)]
impl Accepted {
    pub fn quorum_met(&self) -> bool {
        self.count >= self.quorum
    }
}

/// The quorum a policy asks for (at least one).
pub fn quorum(policy: &ApprovalPlan) -> u32 {
    policy.quorum.max(1)
}

/// Decides whether `approver` may approve, given the run's `initiator` and the distinct
/// approvers already `granted`.
pub fn evaluate(
    policy: &ApprovalPlan,
    initiator: Option<&str>,
    granted: &[String],
    approver: &str,
) -> Result<Accepted, Refusal> {
    if let Some(allowed) = &policy.approvers
        && !allowed.iter().any(|name| name == approver)
    {
        return Err(Refusal::NotAnApprover {
            approver: approver.to_string(),
            allowed: allowed.clone(),
        });
    }
    if !policy.allow_self && initiator == Some(approver) {
        return Err(Refusal::SelfApproval {
            approver: approver.to_string(),
        });
    }
    if granted.iter().any(|name| name == approver) {
        return Err(Refusal::AlreadyApproved {
            approver: approver.to_string(),
        });
    }
    let count = u32::try_from(granted.len() + 1).unwrap_or(u32::MAX);
    Ok(Accepted {
        approver: approver.to_string(),
        count,
        quorum: quorum(policy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(approvers: Option<&[&str]>, quorum: u32, allow_self: bool) -> ApprovalPlan {
        ApprovalPlan {
            approvers: approvers.map(|names| names.iter().map(|n| n.to_string()).collect()),
            quorum,
            allow_self,
        }
    }

    #[test]
    fn approver_comes_from_flag_then_pipe_approver_then_user() {
        assert_eq!(
            resolve_approver(Some("a"), Some("b"), Some("c")).unwrap(),
            "a"
        );
        assert_eq!(resolve_approver(None, Some("b"), Some("c")).unwrap(), "b");
        assert_eq!(
            resolve_approver(Some(" "), Some(""), Some("c")).unwrap(),
            "c"
        );
        assert!(resolve_approver(None, None, None).is_none());
    }

    #[test]
    fn listed_approver_meets_default_quorum() {
        let plan = policy(Some(&["alice", "bob"]), 1, false);
        let accepted = evaluate(&plan, Some("carol"), &[], "alice").unwrap();
        assert!(accepted.quorum_met());
    }

    #[test]
    fn unlisted_approver_is_refused_with_the_list() {
        let plan = policy(Some(&["alice", "bob"]), 1, false);
        let refusal = evaluate(&plan, None, &[], "mallory").unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "mallory is not an approver here (approvers: alice, bob)"
        );
    }

    #[test]
    fn initiator_cannot_approve_unless_allow_self() {
        let strict = policy(None, 1, false);
        assert!(matches!(
            evaluate(&strict, Some("alice"), &[], "alice"),
            Err(Refusal::SelfApproval { .. })
        ));
        let relaxed = policy(None, 1, true);
        assert!(evaluate(&relaxed, Some("alice"), &[], "alice").is_ok());
    }

    #[test]
    fn quorum_counts_distinct_approvers() {
        let plan = policy(Some(&["alice", "bob", "carol"]), 2, false);
        let first = evaluate(&plan, None, &[], "alice").unwrap();
        assert!(!first.quorum_met());
        let granted = vec!["alice".to_string()];
        assert!(matches!(
            evaluate(&plan, None, &granted, "alice"),
            Err(Refusal::AlreadyApproved { .. })
        ));
        let second = evaluate(&plan, None, &granted, "bob").unwrap();
        assert_eq!((second.count, second.quorum), (2, 2));
        assert!(second.quorum_met());
    }

    #[test]
    fn zero_quorum_still_needs_one_approval() {
        let plan = policy(None, 0, false);
        assert_eq!(quorum(&plan), 1);
    }
}
