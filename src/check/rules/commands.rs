//! E0504: a `${{ }}` in a shell command where no quoting keeps its value data (a here-document
//! body, backticks, `$(( ))`, …) or in a job whose `shell` does not quote like `sh`.

use crate::check::program::Program;
use crate::diagnostics::Diagnostic;
use crate::shell_syntax::{Scanner, quotes_for};
use crate::syntax::ast::{Expr, ExprKind, Segment, StrLit};

pub(super) fn check(program: &Program, out: &mut Vec<Diagnostic>) {
    each_command(program, |command, shell| check_command(command, shell, out));
}

/// Every shell command of the program (job steps, promote and drill blocks, probes), with the
/// shell of its job when it names one.
pub(super) fn each_command<'p>(
    program: &'p Program,
    mut visit: impl FnMut(&'p StrLit, Option<&'p str>),
) {
    for job in &program.jobs {
        let shell = job.shell.as_ref().map(|s| s.value.as_str());
        for step in &job.steps {
            visit(step, shell);
        }
    }
    for promote in &program.promotes {
        let blocks = [&promote.deploy, &promote.smoke, &promote.rollback];
        let migrate = promote.migrate.as_ref().map(|m| &m.block);
        for block in blocks.into_iter().flatten().chain(migrate) {
            block.steps.iter().for_each(|step| visit(step, None));
        }
        for probe in promote.watch.iter().flat_map(|w| &w.probes) {
            visit(&probe.command, None);
        }
    }
    for drill in &program.drills {
        for block in [&drill.backup, &drill.restore, &drill.verify]
            .into_iter()
            .flatten()
        {
            block.steps.iter().for_each(|step| visit(step, None));
        }
    }
}

/// A literal hole (`${{ 3 }}`) is the author's own text, written into the plan as such.
fn is_value(expr: &Expr) -> bool {
    !matches!(
        expr.kind,
        ExprKind::Number(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Percent(_)
            | ExprKind::Str(_)
    )
}

fn check_command(command: &StrLit, shell: Option<&str>, out: &mut Vec<Diagnostic>) {
    let mut scanner = Scanner::default();
    for segment in &command.segments {
        match segment {
            Segment::Text(text) => scanner.feed(text),
            Segment::Interp(expr) if is_value(expr) => {
                if !quotes_for(shell) {
                    out.push(other_shell(expr, shell.unwrap_or_default()));
                } else if let Err(why) = scanner.placement() {
                    out.push(unsafe_place(expr, why));
                }
                scanner.after_hole();
            }
            Segment::Interp(_) => scanner.after_hole(),
        }
    }
}

const USE_ENV: &str = "pass the value through `env { NAME = \"${{ … }}\" }` and use `$NAME` in \
                       the command: a variable is data wherever it is expanded";

fn unsafe_place(expr: &Expr, why: &str) -> Diagnostic {
    Diagnostic::error(
        "E0504",
        format!("this value sits {why}, where no quoting keeps it from becoming shell code"),
    )
    .primary(expr.span, "cannot be quoted here")
    .help(USE_ENV)
}

fn other_shell(expr: &Expr, shell: &str) -> Diagnostic {
    Diagnostic::error(
        "E0504",
        format!("this value cannot be quoted for the job's shell `{shell}`"),
    )
    .primary(expr.span, "cannot be quoted for this shell")
    .help(format!(
        "values are quoted the way sh, bash, dash, ksh and zsh read them; for another shell, {USE_ENV} (read the variable the way `{shell}` does)"
    ))
}

#[cfg(test)]
mod tests {
    use crate::check::testing::{codes, full_check};

    #[test]
    fn a_hole_in_a_heredoc_or_another_shell_is_e0504() {
        let (checked, _) = full_check(
            r#"pipeline p {
  job a { run """
    cat <<EOF
    ${{ git.branch }}
    EOF
    """ }
  job b { shell = "python3 -c"  run "print('${{ git.sha }}')" }
  job c { shell = "bash"  run "echo '${{ git.sha }}' \"${{ git.sha }}\" ${{ 3 }}" }
  job d { run "echo $(( ${{ 2 }} + 1 ))" }
}"#,
            &[],
        );
        assert_eq!(codes(&checked), vec!["E0504", "E0504"]);
    }
}
