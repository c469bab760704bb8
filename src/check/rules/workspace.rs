//! E0107/W0104: an artifact `path` or a job `workdir` must stay inside the pipeline's
//! directory; leaving it (absolute, or `..` past the top) needs `outside_workspace = true`.

use super::index::Index;
use crate::check::program::Spanned;
use crate::diagnostics::{Diagnostic, Span};
use std::path::{Component, Path};

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    let program = index.program;
    for artifact in &program.artifacts {
        let what = format!("artifact `{}`", artifact.name.name);
        check_path(
            &what,
            "path",
            &artifact.path,
            &artifact.outside_workspace,
            out,
        );
    }
    for job in &program.jobs {
        if let Some(workdir) = &job.workdir {
            let what = format!("job `{}`", job.name.name);
            check_path(&what, "workdir", workdir, &job.outside_workspace, out);
        }
    }
}

fn check_path(
    what: &str,
    key: &str,
    path: &Spanned<String>,
    opt_in: &Option<Spanned<bool>>,
    out: &mut Vec<Diagnostic>,
) {
    let Some(why) = escapes_workspace(&path.value) else {
        return;
    };
    let allowed = opt_in.as_ref().filter(|flag| flag.value);
    out.push(match allowed {
        Some(flag) => allowed_outside(what, key, path, why, flag.span),
        None => Diagnostic::error(
            "E0107",
            format!(
                "the {key} of {what} is outside the workspace: `{}` {why}",
                path.value
            ),
        )
        .primary(path.span, why.to_string())
        .help(format!(
            "use a path inside the pipeline's directory; if {what} really must reach outside it, \
             add `outside_workspace = true` to it"
        )),
    });
}

fn allowed_outside(
    what: &str,
    key: &str,
    path: &Spanned<String>,
    why: &str,
    flag: Span,
) -> Diagnostic {
    Diagnostic::warning(
        "W0104",
        format!(
            "the {key} of {what} leaves the workspace: `{}` {why}",
            path.value
        ),
    )
    .primary(path.span, why.to_string())
    .secondary(flag, "allowed here")
    .help(
        "the run depends on files this pipeline does not own; keep the path inside the \
         pipeline's directory when you can",
    )
}

/// Why `path` leaves the directory it is relative to, judged on its text alone (symlinks are
/// checked when the run reads the path).
fn escapes_workspace(path: &str) -> Option<&'static str> {
    let mut depth = 0usize;
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Some("is an absolute path"),
            Component::ParentDir if depth == 0 => {
                return Some("climbs above the pipeline's directory");
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::escapes_workspace;

    #[test]
    fn only_paths_that_leave_the_directory_escape() {
        for inside in ["target/app", "./dist", "a/../b", "a/b/../../c", "."] {
            assert_eq!(escapes_workspace(inside), None, "{inside}");
        }
        for outside in ["/etc/passwd", "/", "..", "../x", "a/../../x", "./../x"] {
            assert!(escapes_workspace(outside).is_some(), "{outside}");
        }
    }

    #[test]
    fn an_escaping_workdir_is_an_error_without_the_opt_in_and_a_warning_with_it() {
        let mut program = clean_program();
        program.jobs[0].workdir = Some(spanned("/".to_string()));
        assert_eq!(with_code(&program, "E0107").len(), 1);
        program.jobs[0].outside_workspace = Some(spanned(true));
        assert!(with_code(&program, "E0107").is_empty());
        assert_eq!(with_code(&program, "W0104").len(), 1);
    }
}
