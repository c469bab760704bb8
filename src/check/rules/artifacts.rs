//! E0302: an artifact promoted (or listed in `produces`) must be produced by exactly one job.

use super::index::Index;
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::Ident;

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    for artifact in &program.artifacts {
        let name = artifact.name.name.as_str();
        let producers: Vec<(&Ident, &Ident)> = program
            .jobs
            .iter()
            .flat_map(|job| job.produces.iter().map(move |p| (&job.name, p)))
            .filter(|(_, produced)| produced.name == name)
            .collect();
        if producers.len() > 1 {
            out.push(produced_twice(name, &producers));
        }
        if !producers.is_empty() {
            continue;
        }
        let shipped = program.promotes.iter().filter_map(|p| p.artifact.as_ref());
        for use_ in shipped.filter(|a| a.name == name) {
            out.push(
                Diagnostic::error(
                    "E0302",
                    format!("artifact `{name}` is promoted but no job produces it"),
                )
                .primary(use_.span, "promoted here")
                .secondary(artifact.name.span, "declared here")
                .help(format!(
                    "add `produces = [{name}]` to the job that builds `{}`",
                    artifact.path.value
                )),
            );
        }
    }
}

fn produced_twice(name: &str, producers: &[(&Ident, &Ident)]) -> Diagnostic {
    let jobs: Vec<String> = producers
        .iter()
        .map(|(job, _)| format!("`{}`", job.name))
        .collect();
    let mut diagnostic = Diagnostic::error(
        "E0302",
        format!(
            "artifact `{name}` is produced by {} jobs: {}",
            jobs.len(),
            jobs.join(", ")
        ),
    );
    for (position, (job, produced)) in producers.iter().enumerate() {
        let text = format!("produced by job `{}`", job.name);
        diagnostic = if position == 0 {
            diagnostic.primary(produced.span, text)
        } else {
            diagnostic.secondary(produced.span, text)
        };
    }
    diagnostic.help(format!(
        "an artifact is built once: keep `produces = [{name}]` on one job and let the others \
         `needs` it"
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn a_promoted_artifact_nobody_produces() {
        let mut program = clean_program();
        program.jobs[1].produces.clear();
        let found = with_code(&program, "E0302");
        assert_eq!(found.len(), 2, "one per promote: {found:?}");
        assert_eq!(
            found[0].message,
            "artifact `api_bin` is promoted but no job produces it"
        );
    }

    #[test]
    fn an_artifact_produced_by_two_jobs_labels_both() {
        let mut program = clean_program();
        program.jobs[0].produces = idents(&["api_bin"]);
        let found = with_code(&program, "E0302");
        assert_eq!(found.len(), 1);
        assert_eq!(
            label_texts(&found[0]),
            vec!["produced by job `lint`", "produced by job `package`"]
        );
        assert_eq!(codes(&program), vec!["E0302"]);
    }
}
