//! Watching in real time: runs each probe on its interval for a span, feeds every sample to
//! the watch rules (`deliver::watch`), keeps the samples in the delivery record, audits
//! warnings, and stops at the first rollback decision or interrupt.

use super::Promotion;
use crate::audit::AuditEvent;
use crate::compile::plan::{ProbePlan, WatchPlan};
use crate::deliver::host::StepContext;
use crate::deliver::probe_value::{ProbeError, ProbeValue, read_probe};
use crate::deliver::watch::{Decision, Monitor, RuleKind};
use crate::store::LeaseLost;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How a watch span ended.
pub enum WatchEnd {
    Healthy,
    Breached(Decision),
    Interrupted,
    /// The backend took the lock away mid-watch: stop watching a deploy we no longer own.
    LockLost(LeaseLost),
}

/// A probe never runs longer than this, nor longer than its own interval (with a floor), so a
/// hung probe becomes a failed sample instead of a stalled watch.
const PROBE_TIMEOUT_CEILING: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT_FLOOR: Duration = Duration::from_secs(2);

pub(crate) fn watch_for(
    promotion: &mut Promotion<'_>,
    plan: &WatchPlan,
    duration_ms: u64,
    context: &StepContext,
) -> WatchEnd {
    let mut monitor = Monitor::new(plan, context_values(context));
    let started = Instant::now();
    let span = Duration::from_millis(duration_ms);
    let mut next_due: Vec<Duration> = vec![Duration::ZERO; plan.probes.len()];
    let node = promotion.node_id("watch");
    loop {
        if promotion.host.interrupted() {
            return WatchEnd::Interrupted;
        }
        let elapsed = started.elapsed();
        if elapsed >= span {
            return WatchEnd::Healthy;
        }
        let due: Vec<usize> = (0..plan.probes.len())
            .filter(|&index| next_due[index] <= elapsed)
            .collect();
        if due.is_empty() {
            let wake = earliest(&next_due).map_or(span, |(_, at)| at.min(span));
            if let WatchEnd::Interrupted = sleep_until(promotion, started + wake) {
                return WatchEnd::Interrupted;
            }
            continue;
        }
        if let Err(lost) = promotion.lease.check() {
            return WatchEnd::LockLost(lost);
        }
        let readings = sample_all(promotion, &node, plan, &due, context, started);
        let finished = started.elapsed();
        for (index, (at_ms, reading)) in due.iter().copied().zip(readings) {
            let probe = &plan.probes[index];
            // Keep the interval, but never queue up samples behind a slow probe.
            let interval = Duration::from_millis(probe.every_ms.max(1));
            next_due[index] = (next_due[index] + interval).max(finished);
            if let Some(decision) = record(promotion, &mut monitor, &probe.name, at_ms, reading) {
                return WatchEnd::Breached(decision);
            }
        }
    }
}

/// Feeds one sample to the rules; audits warnings; returns a rollback decision.
fn record(
    promotion: &mut Promotion<'_>,
    monitor: &mut Monitor,
    probe: &str,
    at_ms: u64,
    reading: Result<ProbeValue, ProbeError>,
) -> Option<Decision> {
    let fired = monitor.record(probe, at_ms, reading);
    if let Some(sample) = monitor.samples().last() {
        promotion.record.samples.push(sample.clone());
    }
    let _ = promotion
        .record
        .save(&promotion.request.store, &promotion.request.run_id);
    for decision in fired {
        promotion.record.decisions.push(decision.clone());
        match decision.kind {
            RuleKind::Rollback => return Some(decision),
            RuleKind::Warn => warn(promotion, &decision),
        }
    }
    None
}

/// Runs the due probes side by side; each reading comes back with the time it was taken.
fn sample_all(
    promotion: &Promotion<'_>,
    node: &str,
    plan: &WatchPlan,
    due: &[usize],
    context: &StepContext,
    origin: Instant,
) -> Vec<(u64, Result<ProbeValue, ProbeError>)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = due
            .iter()
            .map(|&index| {
                let probe = &plan.probes[index];
                scope.spawn(move || {
                    let reading = sample(promotion, node, probe, context);
                    (origin.elapsed().as_millis() as u64, reading)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or((0, Err(ProbeError::RunnerPanicked)))
            })
            .collect()
    })
}

fn earliest(next_due: &[Duration]) -> Option<(usize, Duration)> {
    next_due
        .iter()
        .copied()
        .enumerate()
        .min_by_key(|(_, due)| *due)
}

fn sleep_until(promotion: &Promotion<'_>, deadline: Instant) -> WatchEnd {
    loop {
        if promotion.host.interrupted() {
            return WatchEnd::Interrupted;
        }
        let now = Instant::now();
        if now >= deadline {
            return WatchEnd::Healthy;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

fn sample(
    promotion: &Promotion<'_>,
    node: &str,
    probe: &ProbePlan,
    context: &StepContext,
) -> Result<ProbeValue, ProbeError> {
    let timeout =
        Duration::from_millis(probe.every_ms).clamp(PROBE_TIMEOUT_FLOOR, PROBE_TIMEOUT_CEILING);
    let run = promotion.host.run_probe(node, probe, context, timeout);
    read_probe(&probe.ty, &run)
}

fn warn(promotion: &Promotion<'_>, decision: &Decision) {
    promotion.host.say(&format!(
        "warning: [{}] warn when {}: {}",
        promotion.node_id("watch"),
        decision.condition,
        decision.evidence
    ));
    let logged = promotion.log(
        AuditEvent::WatchWarning,
        json!({
            "condition": decision.condition,
            "observed": decision.observed,
            "evidence": decision.evidence,
            "summary": decision.evidence,
        }),
    );
    if let Err(reason) = logged {
        promotion.host.say(&format!("warning: {reason}"));
    }
}

/// Names a condition may read besides probes (`env.replicas`), as probe values.
fn context_values(context: &StepContext) -> BTreeMap<String, ProbeValue> {
    context
        .bindings
        .names()
        .filter_map(|name| {
            let literal = context.bindings.get(name)?;
            Some((name.to_string(), ProbeValue::from(literal)))
        })
        .collect()
}
