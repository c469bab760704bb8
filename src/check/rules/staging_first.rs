//! E0402 staging first: a promote to a protected environment needs, upstream of it, a promote of
//! the same artifact to an unprotected environment that has a `smoke` block.

use super::index::{Index, promote_header};
use super::walk::jobs_read;
use crate::check::program::Promote;
use crate::diagnostics::Diagnostic;
use std::collections::BTreeSet;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    for promote in &index.program.promotes {
        let Some(environment) = index.environment_of(promote) else {
            continue;
        };
        let Some(artifact) = &promote.artifact else {
            continue;
        };
        if !environment.protected.value {
            continue;
        }
        let upstream = upstream_promotes(index, promote);
        if upstream.iter().any(|p| !ships_known_artifact(index, p)) {
            // An upstream promote with an unknown artifact is already an error; it may be the
            // staging promote, so judging staging-first now would only add noise.
            continue;
        }
        let is_staging = |candidate: &&Promote| is_staging_for(index, candidate, &artifact.name);
        if upstream.iter().any(is_staging) {
            continue;
        }
        out.push(missing_staging(index, promote, &artifact.name, &upstream));
    }
}

fn ships_known_artifact(index: &Index, promote: &Promote) -> bool {
    promote
        .artifact
        .as_ref()
        .is_some_and(|a| index.artifacts.contains_key(a.name.as_str()))
}

/// Whether `candidate` promotes `artifact` to an unprotected environment and smoke-tests it.
fn is_staging_for(index: &Index, candidate: &Promote, artifact: &str) -> bool {
    let unprotected = index
        .environment_of(candidate)
        .is_some_and(|e| !e.protected.value);
    let same_artifact = candidate
        .artifact
        .as_ref()
        .is_some_and(|a| a.name == artifact);
    unprotected && same_artifact && candidate.smoke.is_some()
}

fn missing_staging(
    index: &Index,
    promote: &Promote,
    artifact: &str,
    upstream: &[&Promote],
) -> Diagnostic {
    let name = &promote.environment.name;
    let mut diagnostic = Diagnostic::error(
        "E0402",
        format!("protected environment `{name}` is promoted without a staging promote first"),
    )
    .primary(
        promote_header(promote),
        format!("no promote of `{artifact}` to an unprotected, smoke-tested environment runs before this"),
    );
    let unsmoked = upstream.iter().find(|p| {
        let unprotected = index.environment_of(p).is_some_and(|e| !e.protected.value);
        unprotected && p.artifact.as_ref().is_some_and(|a| a.name == artifact) && p.smoke.is_none()
    });
    if let Some(unsmoked) = unsmoked {
        diagnostic = diagnostic.secondary(
            promote_header(unsmoked),
            format!(
                "`{}` is upstream but has no `smoke` block",
                unsmoked.environment.name
            ),
        );
    }
    let elsewhere = index
        .program
        .promotes
        .iter()
        .find(|p| is_staging_for(index, p, artifact));
    let help = match elsewhere {
        Some(staging) => format!(
            "make it wait for the staging promote: `after = [{}]`",
            staging.environment.name
        ),
        None => format!(
            "promote `{artifact}` to an unprotected environment with a `smoke` block first, and \
             list it in this promote's `after`"
        ),
    };
    diagnostic.help(help)
}

/// The promotes upstream of `promote`, through `after`/`needs` (a stage means its jobs, a gate
/// also what its conditions read). Cycles are the compiler's to report; the walk just stops.
pub(super) fn upstream_promotes<'p>(index: &Index<'p>, promote: &'p Promote) -> Vec<&'p Promote> {
    let mut pending: Vec<String> = promote.after.iter().map(|i| i.name.clone()).collect();
    let mut seen = BTreeSet::new();
    let mut found: Vec<&Promote> = Vec::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        pending.extend(predecessors(index, &name));
        if let Some(upstream) = index.promotes.get(name.as_str())
            && !std::ptr::eq(*upstream, promote)
        {
            found.push(upstream);
        }
    }
    found
}

/// What a name in `after`/`needs` waits for, one step back.
fn predecessors(index: &Index, name: &str) -> Vec<String> {
    let names = |idents: &[crate::syntax::ast::Ident]| -> Vec<String> {
        idents.iter().map(|i| i.name.clone()).collect()
    };
    let mut out = Vec::new();
    if let Some(job) = index.jobs.get(name) {
        out.extend(names(&job.needs));
        out.extend(names(&job.after));
    }
    if let Some(stage) = index.stages.get(name) {
        out.extend(names(&stage.jobs));
        out.extend(names(&stage.after));
    }
    if let Some(gate) = index.gates.get(name) {
        out.extend(names(&gate.after));
        for condition in gate.requires.iter().chain(&gate.warns) {
            jobs_read(condition, &mut out);
        }
    }
    if let Some(promote) = index.promotes.get(name) {
        out.extend(names(&promote.after));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn production_after_staging_is_fine() {
        assert!(with_code(&clean_program(), "E0402").is_empty());
    }

    #[test]
    fn production_not_after_staging_is_e0402() {
        let mut program = clean_program();
        program.promotes[1].after = idents(&["quality"]);
        let found = with_code(&program, "E0402");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].help.as_deref(),
            Some("make it wait for the staging promote: `after = [staging]`")
        );
    }

    #[test]
    fn staging_without_smoke_does_not_count() {
        let mut program = clean_program();
        program.promotes[0].smoke = None;
        let found = with_code(&program, "E0402");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].labels.len(),
            2,
            "labels the unsmoked staging: {found:?}"
        );
    }

    #[test]
    fn staging_is_found_through_jobs_stages_and_gates() {
        let mut program = clean_program();
        let mut after_staging = job("announce");
        after_staging.after = idents(&["staging"]);
        program.jobs.push(after_staging);
        program.stages.push(crate::check::program::Stage {
            name: ident("verify"),
            after: Vec::new(),
            when: None,
            jobs: idents(&["announce"]),
            span: span(10),
        });
        program.promotes[1].after = idents(&["verify"]);
        assert!(with_code(&program, "E0402").is_empty());
    }

    #[test]
    fn a_staging_of_another_artifact_does_not_count_and_cycles_end() {
        let mut program = clean_program();
        program.artifacts.push(artifact("web"));
        program.jobs[0].produces = idents(&["web"]);
        program.promotes[0].artifact = Some(ident("web"));
        program.promotes[0].after = idents(&["production"]);
        assert_eq!(with_code(&program, "E0402").len(), 1);
    }

    #[test]
    fn an_upstream_promote_of_an_unknown_artifact_is_not_judged() {
        let mut program = clean_program();
        program.promotes[0].artifact = Some(ident("api_bni"));
        assert_eq!(codes(&program), vec!["E0101"]);
    }
}
