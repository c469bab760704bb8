//! Expression typing (E0201), where names may be read (E0203), unknown name paths (E0101) and
//! secrets read into strings or conditions (E0502), over every expression of the program.

use super::index::Index;
use super::name_table::{self, Lookup};
use super::walk::{Place, Role, Site, sites};
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Ident, Segment, Type};

pub(super) fn check(index: &Index, out: &mut Vec<Diagnostic>) {
    for site in sites(index.program) {
        check_site(index, site, out);
    }
}

fn check_site(index: &Index, site: Site, out: &mut Vec<Diagnostic>) {
    let mut typer = Typer {
        index,
        place: site.place,
        interpolated: site.role == Role::Interpolation,
        out,
    };
    let ty = typer.infer(site.expr);
    if let (Role::Condition(word), Some(ty)) = (site.role, ty)
        && ty != Type::Bool
    {
        out.push(
            Diagnostic::error("E0201", format!("{word} needs a bool, found `{ty}`"))
                .primary(site.expr.span, format!("this is {ty}"))
                .help(format!(
                    "{word} takes a condition: compare the value, e.g. {}",
                    comparison_example(&ty)
                )),
        );
    }
}

fn comparison_example(ty: &Type) -> String {
    match ty {
        Type::String => "`git.branch == \"main\"`".to_string(),
        Type::Percent => "`error_rate > 1%`".to_string(),
        Type::Duration => "`jobs.test.duration < 5m`".to_string(),
        _ => format!("`… == {}`", literal_example(ty)),
    }
}

/// A literal of the type, for help lines.
fn literal_example(ty: &Type) -> &'static str {
    match ty {
        Type::String => "\"text\"",
        Type::Number => "42",
        Type::Bool => "true",
        Type::Duration => "30s",
        Type::Percent => "1%",
        Type::List(_) => "[\"a\", \"b\"]",
    }
}

/// Types one expression at one place. `None` is "unknown": a problem inside was already reported,
/// so the enclosing expression reports nothing more about it.
struct Typer<'a, 'p> {
    index: &'a Index<'p>,
    place: Place<'p>,
    interpolated: bool,
    out: &'a mut Vec<Diagnostic>,
}

impl Typer<'_, '_> {
    fn infer(&mut self, expr: &Expr) -> Option<Type> {
        match &expr.kind {
            ExprKind::Str(string) => {
                for segment in &string.segments {
                    if let Segment::Interp(inner) = segment {
                        let was = std::mem::replace(&mut self.interpolated, true);
                        self.infer(inner);
                        self.interpolated = was;
                    }
                }
                Some(Type::String)
            }
            ExprKind::Number(_) => Some(Type::Number),
            ExprKind::Bool(_) => Some(Type::Bool),
            ExprKind::Duration(_) => Some(Type::Duration),
            ExprKind::Percent(_) => Some(Type::Percent),
            ExprKind::Path(path) => self.resolve(path, expr.span),
            ExprKind::List(items) => self.infer_list(items),
            ExprKind::Call(call) => {
                self.out.push(
                    Diagnostic::error("E0101", format!("unknown function `{}`", call.name()))
                        .primary(call.callee_span(), "not a function of expressions")
                        .help(
                            "expressions have no functions: use literals, dotted names such as \
                             `git.branch`, comparisons, `and`, `or` and `not`",
                        ),
                );
                None
            }
            ExprKind::Not(inner) => {
                let ty = self.infer(inner);
                self.expect_bool(inner, ty, "`not`", expr.span);
                Some(Type::Bool)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let left = self.infer(lhs);
                let right = self.infer(rhs);
                if op.is_comparison() {
                    self.compare(*op, *op_span, (lhs, left), (rhs, right));
                } else {
                    let word = format!("`{}`", op.symbol());
                    self.expect_bool(lhs, left, &word, *op_span);
                    self.expect_bool(rhs, right, &word, *op_span);
                }
                Some(Type::Bool)
            }
        }
    }

    fn infer_list(&mut self, items: &[Expr]) -> Option<Type> {
        let mut first: Option<(Type, Span)> = None;
        for item in items {
            let Some(ty) = self.infer(item) else { continue };
            match &first {
                None => first = Some((ty, item.span)),
                Some((expected, at)) if *expected != ty => self.out.push(
                    Diagnostic::error("E0201", format!("a list of `{expected}` holds a `{ty}`"))
                        .primary(item.span, format!("this is {ty}"))
                        .secondary(*at, format!("this is {expected}"))
                        .help("the items of a list have one type"),
                ),
                Some(_) => {}
            }
        }
        Some(Type::List(Box::new(
            first.map_or(Type::String, |(ty, _)| ty),
        )))
    }

    fn expect_bool(&mut self, operand: &Expr, ty: Option<Type>, word: &str, operator: Span) {
        let Some(ty) = ty else { return };
        if ty == Type::Bool {
            return;
        }
        self.out.push(
            Diagnostic::error("E0201", format!("{word} needs bool operands, found `{ty}`"))
                .primary(operand.span, format!("this is {ty}"))
                .secondary(operator, format!("{word} takes bools"))
                .help(format!(
                    "compare the value to get a bool, e.g. {}",
                    comparison_example(&ty)
                )),
        );
    }

    fn compare(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        (lhs, left): (&Expr, Option<Type>),
        (rhs, right): (&Expr, Option<Type>),
    ) {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let symbol = op.symbol();
        if left != right {
            self.out.push(
                Diagnostic::error("E0201", format!("cannot compare `{left}` with `{right}`"))
                    .primary(op_span, format!("`{symbol}` compares values of one type"))
                    .secondary(lhs.span, format!("this is {left}"))
                    .secondary(rhs.span, format!("this is {right}"))
                    .help(format!(
                        "there is no implicit conversion: compare a {left} with a {left} (e.g. `{}`)",
                        literal_example(&left)
                    )),
            );
            return;
        }
        let ordered = matches!(left, Type::Number | Type::Percent | Type::Duration);
        let equality = matches!(op, BinaryOp::Eq | BinaryOp::Ne);
        let comparable = ordered || (equality && matches!(left, Type::String | Type::Bool));
        if !comparable {
            self.out.push(
                Diagnostic::error(
                    "E0201",
                    format!("`{symbol}` cannot compare `{left}` values"),
                )
                .primary(op_span, format!("`{symbol}` on {left}"))
                .secondary(lhs.span, format!("this is {left}"))
                .secondary(rhs.span, format!("this is {right}"))
                .help(
                    "`<`, `<=`, `>`, `>=` order numbers, percents and durations; `==` and \
                         `!=` also compare strings and bools",
                ),
            );
        }
    }

    fn resolve(&mut self, path: &[Ident], span: Span) -> Option<Type> {
        let lookup = name_table::lookup(self.index, self.place, path, span);
        match lookup {
            Lookup::Found(ty) => Some(ty),
            Lookup::Skip => None,
            Lookup::Unknown(diagnostic) | Lookup::NotHere(diagnostic) => {
                self.out.push(*diagnostic);
                None
            }
            Lookup::Secret { name, span } => {
                let listed = secrets_listed_at(self.place).iter().any(|s| s.name == name);
                self.out
                    .push(secret_read(&name, span, self.interpolated, listed));
                None
            }
        }
    }
}

/// The secrets the item at `place` lists in `secrets = [...]`.
fn secrets_listed_at<'p>(place: Place<'p>) -> &'p [Ident] {
    match place {
        Place::Job(job) => &job.secrets,
        Place::Promote(promote, _) => &promote.secrets,
        Place::Drill(drill, _) => &drill.secrets,
        Place::Pipeline | Place::Stage(_) | Place::Gate(_) => &[],
    }
}

/// E0502: a secret's value read by an expression. `listed`: the item already declares it.
fn secret_read(name: &str, span: Span, interpolated: bool, listed: bool) -> Diagnostic {
    let (message, label) = if interpolated {
        (
            format!("secret `{name}` interpolated into a string"),
            "secrets are never interpolated",
        )
    } else {
        (
            format!("secret `{name}` read in an expression"),
            "secrets are never read by expressions",
        )
    };
    let variable = name.to_uppercase();
    let help = if listed {
        format!(
            "this item already lists `{name}` in `secrets`: read the environment variable \
             `${variable}` in the command instead, so the value never appears in a command line, \
             plan or log"
        )
    } else {
        format!(
            "list it in `secrets = [{name}]` of this item and read the environment variable \
             `${variable}` in the command, so the value never appears in a command line, plan or log"
        )
    };
    Diagnostic::error("E0502", message)
        .primary(span, label)
        .help(help)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::check::program::Value;
    use crate::syntax::ast::{BinaryOp, ExprKind, Type};

    #[test]
    fn the_clean_program_types() {
        assert!(with_code(&clean_program(), "E0201").is_empty());
        assert!(with_code(&clean_program(), "E0203").is_empty());
    }

    #[test]
    fn comparing_percent_with_duration_labels_both_operands_and_the_operator() {
        let mut program = clean_program();
        let condition = binary(percent(1.0), BinaryOp::Gt, millis(900));
        program.gates[0].requires = vec![condition];
        let found = with_code(&program, "E0201");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].message, "cannot compare `percent` with `duration`");
        assert_eq!(
            label_texts(&found[0]),
            vec![
                "`>` compares values of one type",
                "this is percent",
                "this is duration"
            ]
        );
    }

    #[test]
    fn a_condition_must_be_bool() {
        let mut program = clean_program();
        program.jobs[0].when = Some(path("git.branch"));
        program.gates[0].warns = vec![path("jobs.lint.duration")];
        let found = with_code(&program, "E0201");
        let messages: Vec<_> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "`when` needs a bool, found `string`",
                "`warn` needs a bool, found `duration`"
            ]
        );
    }

    #[test]
    fn and_needs_bools_and_strings_are_not_ordered() {
        let mut program = clean_program();
        let and = binary(
            path("jobs.lint.exit_code"),
            BinaryOp::And,
            path("jobs.lint.succeeded"),
        );
        let ordered = binary(path("git.branch"), BinaryOp::Lt, text("main"));
        let equal = binary(path("git.branch"), BinaryOp::Eq, text("main"));
        program.gates[0].requires = vec![and, ordered, equal, not(number(1.0))];
        let messages: Vec<_> = with_code(&program, "E0201")
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(
            messages,
            vec![
                "`and` needs bool operands, found `number`",
                "`<` cannot compare `string` values",
                "`not` needs bool operands, found `number`",
            ]
        );
    }

    #[test]
    fn job_outputs_have_their_declared_type() {
        let mut program = clean_program();
        let wrong = binary(
            path("jobs.lint.outputs.coverage"),
            BinaryOp::Ge,
            number(80.0),
        );
        program.gates[0].requires = vec![wrong];
        assert_eq!(codes(&program), vec!["E0201"]);
    }

    #[test]
    fn unknown_jobs_outputs_and_roots_are_e0101_with_suggestions() {
        let mut program = clean_program();
        program.gates[0].requires = vec![
            path("jobs.lnt.succeeded"),
            binary(
                path("jobs.lint.outputs.coverag"),
                BinaryOp::Ge,
                percent(1.0),
            ),
            binary(path("gti.branch"), BinaryOp::Eq, text("main")),
            binary(path("git.brnch"), BinaryOp::Eq, text("main")),
        ];
        let helps: Vec<_> = with_code(&program, "E0101")
            .into_iter()
            .filter_map(|d| d.help)
            .collect();
        assert_eq!(
            helps,
            vec![
                "did you mean `lint`?",
                "did you mean `coverage`?",
                "did you mean `git`?",
                "did you mean `branch`?",
            ]
        );
        assert!(with_code(&program, "E0201").is_empty());
    }

    #[test]
    fn previous_outside_rollback_is_not_available_here() {
        let mut program = clean_program();
        program.promotes[0].deploy = Some(block_of(vec![interpolated(&[
            "./deploy.sh ",
            "${{previous.path}}",
        ])]));
        let found = with_code(&program, "E0203");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("`rollback`")
        );
    }

    #[test]
    fn rollout_weight_only_in_deploy_and_env_only_in_promotes() {
        let mut program = clean_program();
        program.promotes[0].smoke = Some(block_of(vec![interpolated(&[
            "curl ",
            "${{rollout.weight}}",
        ])]));
        program.jobs[0].steps = vec![interpolated(&["curl ", "${{env.url}}"])];
        program.promotes[1].deploy = Some(block_of(vec![interpolated(&[
            "./deploy.sh --weight ",
            "${{rollout.weight}}",
            " ",
            "${{artifact.digest}}",
        ])]));
        assert_eq!(codes(&program), vec!["E0203", "E0203"]);
    }

    #[test]
    fn env_keys_are_typed_by_the_environment_and_checked() {
        let mut program = clean_program();
        for environment in &mut program.environments {
            environment
                .attrs
                .push((ident("replicas"), spanned(Value::Number(1.0))));
        }
        let reads_replicas = binary(path("env.replicas"), BinaryOp::Gt, number(1.0));
        program.promotes[1].when = Some(reads_replicas);
        program.promotes[0].smoke = Some(block_of(vec![interpolated(&["curl ", "${{env.ulr}}"])]));
        let found = diagnostics_of(&program);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, "E0101");
        assert_eq!(found[0].help.as_deref(), Some("did you mean `url`?"));
    }

    #[test]
    fn matrix_keys_only_inside_their_job() {
        let mut program = clean_program();
        program.jobs[0].matrix = vec![(ident("os"), vec![spanned("linux".to_string())])];
        program.jobs[0].steps = vec![interpolated(&["test on ", "${{matrix.os}}"])];
        assert!(diagnostics_of(&program).is_empty());
        program.jobs[1].steps = vec![interpolated(&["build on ", "${{matrix.os}}"])];
        assert_eq!(codes(&program), vec!["E0203"]);
        program.jobs[1].steps = vec![interpolated(&["build on ", "${{matrix.arch}}"])];
        assert_eq!(codes(&program), vec!["E0101"]);
    }

    #[test]
    fn probes_are_read_only_by_their_watch_conditions() {
        let mut program = clean_program();
        let breach = binary(path("error_rate"), BinaryOp::Gt, percent(1.0));
        let latency = binary(path("p95"), BinaryOp::Gt, millis(900));
        let probes = vec![
            probe("error_rate", Type::Percent),
            probe("p95", Type::Duration),
        ];
        program.promotes[1].watch = Some(watch(probes, vec![breach, latency]));
        assert!(
            diagnostics_of(&program).is_empty(),
            "{:?}",
            diagnostics_of(&program)
        );
        program.promotes[0].smoke =
            Some(block_of(vec![interpolated(&["echo ", "${{error_rate}}"])]));
        assert_eq!(codes(&program), vec!["E0203"]);
    }

    #[test]
    fn a_probe_compared_with_the_wrong_type_is_e0201() {
        let mut program = clean_program();
        let breach = binary(path("error_rate"), BinaryOp::Gt, millis(900));
        let probes = vec![probe("error_rate", Type::Percent)];
        program.promotes[1].watch = Some(watch(probes, vec![breach]));
        assert_eq!(codes(&program), vec!["E0201"]);
    }

    #[test]
    fn secrets_are_never_interpolated() {
        let mut program = clean_program();
        program.promotes[0].deploy = Some(block_of(vec![
            interpolated(&["deploy --token ", "${{secrets.deploy_token}}"]),
            interpolated(&["deploy --token ", "${{deploy_token}}"]),
        ]));
        let found = with_code(&program, "E0502");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("`$DEPLOY_TOKEN`")
        );
        assert_eq!(codes(&program), vec!["E0502", "E0502"]);
    }

    #[test]
    fn a_call_in_an_expression_is_unknown() {
        let mut program = clean_program();
        let call = crate::syntax::ast::Call {
            callee: vec![ident("len")],
            args: Vec::new(),
            span: span(5),
        };
        program.gates[0].requires = vec![expr(ExprKind::Call(call))];
        assert_eq!(codes(&program), vec!["E0101"]);
    }

    #[test]
    fn artifact_names_only_inside_promotes() {
        let mut program = clean_program();
        let mut restore = drill("restore", "staging");
        restore.restore = Some(block_of(vec![interpolated(&[
            "./restore.sh ",
            "${{artifact.path}}",
        ])]));
        program.drills.push(restore);
        program.promotes[0].smoke = Some(block_of(vec![interpolated(&[
            "check ",
            "${{artifact.version}}",
            " ",
            "${{env.name}}",
        ])]));
        let found = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0203"]);
        assert_eq!(
            label_texts(&found[0]),
            vec!["not available in drill `restore`"]
        );
    }

    #[test]
    fn the_stored_backup_is_read_only_by_a_drills_restore_and_verify() {
        let mut program = clean_program();
        let backup_path = || block_of(vec![interpolated(&["./use.sh ", "${{backup.path}}"])]);
        program.drills[0].restore = Some(backup_path());
        program.drills[0].verify = Some(block_of(vec![interpolated(&[
            "./verify.sh ",
            "${{backup.digest}}",
        ])]));
        assert_eq!(codes(&program), Vec::<&str>::new());
        program.drills[0].backup = Some(backup_path());
        let found = diagnostics_of(&program);
        assert_eq!(codes(&program), vec!["E0203"]);
        assert!(
            found[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("`restore` and `verify`"),
            "{found:?}"
        );
        program.drills[0].backup = Some(block_of(vec![interpolated(&["x ", "${{backup.size}}"])]));
        assert_eq!(codes(&program), vec!["E0101"]);
    }
}
