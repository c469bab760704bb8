//! Templates: the table of templates visible in a file, the checking of a call's named
//! arguments (E0202), and expansion by substituting parameters into the template's body.

use super::elaborate::values::{Expected, duration_text, fits, fix_hint, number_text};
use crate::diagnostics::{Diagnostic, SourceMap, Span, did_you_mean};
use crate::syntax::ast::{Arg, Call, Expr, ExprKind, Param, Segment, Stmt, StrLit, Template, Type};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The templates one file can call, by the name it calls them (`cargo`, `rust.cargo`).
#[derive(Debug, Default)]
pub(super) struct TemplateTable {
    by_name: BTreeMap<String, Template>,
}

/// A template call expanded into job-body statements.
pub(super) struct Instance {
    /// The template body with arguments substituted; empty when the call had errors.
    pub statements: Vec<Stmt>,
    /// The template's name where it is defined.
    pub definition: Span,
    /// False when an argument was wrong: the statements are then left out, and the job is not
    /// reported again for what the template would have supplied.
    pub complete: bool,
}

impl TemplateTable {
    /// Makes `template` callable as `visible_name`; E0102 when the name is taken.
    pub fn insert(
        &mut self,
        visible_name: String,
        template: &Template,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        match self.by_name.get(&visible_name) {
            Some(first) if first.name.span == template.name.span => {}
            Some(first) => diagnostics.push(
                Diagnostic::error("E0102", format!("two templates are named `{visible_name}`"))
                    .primary(template.name.span, "defined again here")
                    .secondary(first.name.span, "first defined here")
                    .help(
                        "rename one, or import its module with `as ALIAS` to qualify its templates",
                    ),
            ),
            None => {
                self.by_name.insert(visible_name, template.clone());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// "did you mean" for an unknown template: a near miss, or the same template under its
    /// qualified or unqualified name (`cargo` for `rust.cargo`).
    fn suggest(&self, wrong: &str) -> Option<String> {
        did_you_mean(wrong, self.names()).or_else(|| {
            let last = |name: &str| name.rsplit('.').next().unwrap_or_default().to_string();
            self.names()
                .find(|name| last(name) == last(wrong))
                .map(|name| format!("did you mean `{name}`?"))
        })
    }

    /// Expands `call`: checks its arguments against the template's parameters and substitutes
    /// them (or the defaults) into the body. `None` when no such template is visible (E0101).
    pub fn instantiate(
        &self,
        call: &Call,
        sources: &SourceMap,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Instance> {
        let name = call.name();
        let Some(template) = self.get(&name) else {
            let help = self.suggest(&name).unwrap_or_else(|| {
                "define it with `template NAME(…) { … }` or import the module that has it"
                    .to_string()
            });
            diagnostics.push(
                Diagnostic::error("E0101", format!("unknown template `{name}`"))
                    .primary(call.callee_span(), "no template with this name")
                    .help(help),
            );
            return None;
        };
        let mut binder = Binder {
            template,
            call,
            sources,
            diagnostics,
            complete: true,
        };
        let values = binder.bind();
        let complete = binder.complete;
        let statements = if complete {
            substitute_body(&template.body, &values)
        } else {
            Vec::new()
        };
        Some(Instance {
            statements,
            definition: template.name.span,
            complete,
        })
    }
}

/// Checks one call's arguments against the parameters of its template (E0202).
struct Binder<'a> {
    template: &'a Template,
    call: &'a Call,
    sources: &'a SourceMap,
    diagnostics: &'a mut Vec<Diagnostic>,
    complete: bool,
}

impl Binder<'_> {
    /// The value of every parameter: its argument, else its default.
    fn bind(&mut self) -> HashMap<String, Expr> {
        let mut given: HashMap<String, &Arg> = HashMap::new();
        for arg in &self.call.args {
            self.argument(arg, &mut given);
        }
        let mut values: HashMap<String, Expr> = given
            .iter()
            .map(|(name, arg)| (name.clone(), arg.value.clone()))
            .collect();
        for param in &self.template.params {
            if values.contains_key(&param.name.name) {
                continue;
            }
            match &param.default {
                Some(default) => {
                    values.insert(param.name.name.clone(), default.clone());
                }
                // An unnamed argument was already reported with how to name it; it may well
                // be the missing one, so saying it is missing too would only add noise.
                None if self.call.args.iter().any(|arg| arg.name.is_none()) => {
                    self.complete = false;
                }
                None => self.missing(param),
            }
        }
        values
    }

    fn argument<'c>(&mut self, arg: &'c Arg, given: &mut HashMap<String, &'c Arg>) {
        let template = self.template;
        let Some(name) = &arg.name else {
            let example = template
                .params
                .first()
                .map_or("NAME", |p| p.name.name.as_str());
            return self.fail(
                Diagnostic::error("E0202", "template arguments are named")
                    .primary(arg.span, "this argument has no name")
                    .help(format!("write `{example}: value`")),
            );
        };
        let Some(param) = template.params.iter().find(|p| p.name.name == name.name) else {
            let params = template.params.iter().map(|p| p.name.name.as_str());
            let help = did_you_mean(&name.name, params.clone()).unwrap_or_else(|| {
                let all: Vec<&str> = params.collect();
                format!("its parameters are: {}", all.join(", "))
            });
            return self.fail(
                Diagnostic::error(
                    "E0202",
                    format!(
                        "template `{}` has no parameter `{}`",
                        template.name.name, name.name
                    ),
                )
                .primary(name.span, "unknown argument")
                .secondary(template.name.span, "the template is defined here")
                .help(help),
            );
        };
        if let Some(first) = given.get(&name.name) {
            let first_span = first.span;
            return self.fail(
                Diagnostic::error("E0202", format!("argument `{}` is given twice", name.name))
                    .primary(arg.span, "given again here")
                    .secondary(first_span, "first given here"),
            );
        }
        if !fits(&arg.value, &param.ty.ty) {
            self.wrong_type(arg, param);
        }
        given.insert(name.name.clone(), arg);
    }

    fn wrong_type(&mut self, arg: &Arg, param: &Param) {
        let expected = &param.ty.ty;
        let found = crate::check::elaborate::values::describe(&arg.value);
        let help = fix_hint(self.sources, &arg.value, Expected::from(expected));
        self.fail(
            Diagnostic::error(
                "E0202",
                format!(
                    "argument `{}` of `{}` must be a {expected}",
                    param.name.name, self.template.name.name
                ),
            )
            .primary(
                arg.value.span,
                format!("expected {expected}, found {found}"),
            )
            .secondary(
                param.ty.span,
                format!("`{}` is declared as {expected} here", param.name.name),
            )
            .help(help),
        );
    }

    fn missing(&mut self, param: &Param) {
        let name = &param.name.name;
        let ty = &param.ty.ty;
        self.fail(
            Diagnostic::error(
                "E0202",
                format!(
                    "missing argument `{name}` for template `{}`",
                    self.template.name.name
                ),
            )
            .primary(self.call.span, format!("`{name}: {ty}` is required"))
            .secondary(param.span, "declared here without a default")
            .help(format!("add `{name}: {}` to the call", example_of(ty))),
        );
    }

    fn fail(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
        self.complete = false;
    }
}

/// A value of type `ty` as a user would write it, for help lines.
fn example_of(ty: &Type) -> &'static str {
    match ty {
        Type::String => "\"…\"",
        Type::Number => "1",
        Type::Bool => "true",
        Type::Duration => "10m",
        Type::Percent => "80%",
        Type::List(_) => "[…]",
    }
}

/// A value of `ty` that stands in for a parameter when a template is checked on its own.
fn stand_in(ty: &Type, span: Span) -> Expr {
    let kind = match ty {
        Type::String => ExprKind::Str(StrLit {
            segments: vec![Segment::Text(String::new())],
            span,
        }),
        Type::Number => ExprKind::Number(0.0),
        Type::Bool => ExprKind::Bool(false),
        Type::Duration => ExprKind::Duration(0),
        Type::Percent => ExprKind::Percent(0.0),
        // One item, so a list parameter may stand for a matrix axis (which cannot be empty).
        Type::List(item) => ExprKind::List(vec![stand_in(item, span)]),
    };
    Expr { kind, span }
}

/// Checks a template's parameters on their own: names are unique and defaults have the
/// declared type. Returns the body with a stand-in for each parameter, for the elaborator to
/// check as a job body.
pub(super) fn check_definition(
    template: &Template,
    sources: &SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Stmt> {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut values = HashMap::new();
    for param in &template.params {
        if let Some(first) = seen.insert(&param.name.name, param.name.span) {
            diagnostics.push(
                Diagnostic::error(
                    "E0102",
                    format!("parameter `{}` is declared twice", param.name.name),
                )
                .primary(param.name.span, "defined again here")
                .secondary(first, "first defined here"),
            );
        }
        let value = match &param.default {
            Some(default) if fits(default, &param.ty.ty) => default.clone(),
            Some(default) => {
                let found = crate::check::elaborate::values::describe(default);
                diagnostics.push(
                    Diagnostic::error(
                        "E0201",
                        "mismatched types: a default must have its parameter's type",
                    )
                    .primary(
                        default.span,
                        format!("expected {}, found {found}", param.ty.ty),
                    )
                    .secondary(param.ty.span, "declared here")
                    .help(fix_hint(
                        sources,
                        default,
                        Expected::from(&param.ty.ty),
                    )),
                );
                stand_in(&param.ty.ty, param.name.span)
            }
            None => stand_in(&param.ty.ty, param.name.span),
        };
        values.insert(param.name.name.clone(), value);
    }
    substitute_body(&template.body, &values)
}

/// The job body of a template call with a trailing block: an attribute or block of the call's
/// block replaces the template's one of the same name, and its `run` steps come after the
/// template's (see `docs/templates.md`).
pub(super) fn merge(template: Vec<Stmt>, overrides: &[Stmt]) -> Vec<Stmt> {
    let replaced_attrs: HashSet<&str> = overrides
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Attr(attr) => Some(attr.key.name.as_str()),
            _ => None,
        })
        .collect();
    let replaced_blocks: HashSet<&str> = overrides
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Block(block) => Some(block.keyword.name.as_str()),
            _ => None,
        })
        .collect();
    template
        .into_iter()
        .filter(|stmt| match stmt {
            Stmt::Attr(attr) => !replaced_attrs.contains(attr.key.name.as_str()),
            Stmt::Block(block) => !replaced_blocks.contains(block.keyword.name.as_str()),
            _ => true,
        })
        .chain(overrides.iter().cloned())
        .collect()
}

/// The body with every bare parameter name replaced by its value.
fn substitute_body(body: &[Stmt], values: &HashMap<String, Expr>) -> Vec<Stmt> {
    let substitution = Substitution { values };
    let mut statements = body.to_vec();
    for statement in &mut statements {
        substitution.statement(statement);
    }
    statements
}

/// Parameter values by name; replaces bare one-word names (`timeout`, `${{ task }}`).
struct Substitution<'a> {
    values: &'a HashMap<String, Expr>,
}

impl Substitution<'_> {
    fn statement(&self, statement: &mut Stmt) {
        match statement {
            Stmt::Attr(attr) => self.expr(&mut attr.value),
            Stmt::Run(text) => self.string(text),
            Stmt::Require(expr) | Stmt::Warn(expr) => self.expr(expr),
            Stmt::When(when) => {
                self.expr(&mut when.condition);
                if let Some(window) = &mut when.window {
                    self.expr(window);
                }
            }
            Stmt::Probe(probe) => {
                self.expr(&mut probe.source);
                if let Some(every) = &mut probe.every {
                    self.expr(every);
                }
            }
            Stmt::Field(_) => {}
            Stmt::Block(block) => {
                if let Some(arg) = &mut block.arg {
                    self.expr(arg);
                }
                if let Some(call) = &mut block.template {
                    self.call(call);
                }
                for inner in block.body.iter_mut().flatten() {
                    self.statement(inner);
                }
            }
        }
    }

    fn call(&self, call: &mut Call) {
        for arg in &mut call.args {
            self.expr(&mut arg.value);
        }
    }

    fn expr(&self, expr: &mut Expr) {
        if let ExprKind::Path(parts) = &expr.kind
            && let [only] = parts.as_slice()
            && let Some(value) = self.values.get(&only.name)
        {
            *expr = value.clone();
            return;
        }
        match &mut expr.kind {
            ExprKind::Str(text) => self.string(text),
            ExprKind::List(items) => items.iter_mut().for_each(|item| self.expr(item)),
            ExprKind::Call(call) => self.call(call),
            ExprKind::Not(inner) => self.expr(inner),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Number(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Percent(_)
            | ExprKind::Path(_) => {}
        }
    }

    /// Substitutes inside `${{ }}`; a literal value becomes plain text, a string is spliced in.
    fn string(&self, text: &mut StrLit) {
        let mut segments: Vec<Segment> = Vec::with_capacity(text.segments.len());
        for segment in text.segments.drain(..) {
            match segment {
                Segment::Text(plain) => push_text(&mut segments, plain),
                Segment::Interp(mut expr) => {
                    self.expr(&mut expr);
                    splice(&mut segments, expr);
                }
            }
        }
        text.segments = segments;
    }
}

/// Appends an interpolated value: literals as text, strings by their segments, the rest as is.
fn splice(segments: &mut Vec<Segment>, expr: Expr) {
    match expr.kind {
        ExprKind::Str(inner) => {
            for segment in inner.segments {
                match segment {
                    Segment::Text(plain) => push_text(segments, plain),
                    interp @ Segment::Interp(_) => segments.push(interp),
                }
            }
        }
        ExprKind::Number(number) => push_text(segments, number_text(number)),
        ExprKind::Bool(value) => push_text(segments, value.to_string()),
        ExprKind::Duration(millis) => push_text(segments, duration_text(millis)),
        ExprKind::Percent(points) => push_text(segments, format!("{}%", number_text(points))),
        kind => segments.push(Segment::Interp(Expr {
            kind,
            span: expr.span,
        })),
    }
}

/// Appends text, merging it into a preceding text segment.
fn push_text(segments: &mut Vec<Segment>, plain: String) {
    if let Some(Segment::Text(last)) = segments.last_mut() {
        last.push_str(&plain);
    } else {
        segments.push(Segment::Text(plain));
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testing::{check_source, check_with, codes, rendered};
    use crate::syntax::ast::{ExprKind, Segment};

    fn expect_clean(source: &str, files: &[(&str, &str)]) -> crate::check::program::Program {
        let (checked, sources) = check_with(source, files);
        assert!(
            checked.program.is_some(),
            "{}",
            rendered(&checked, &sources)
        );
        checked.program.unwrap()
    }

    #[test]
    fn a_call_uses_defaults_and_records_where_it_came_from() {
        let (checked, sources) =
            check_source("import \"std/rust\"\npipeline p { job lint = cargo(task: \"clippy\") }");
        let program = checked.program.unwrap();
        let lint = &program.jobs[0];
        assert_eq!(lint.steps[0].as_plain().unwrap(), "cargo clippy");
        assert_eq!(lint.settings.timeout.as_ref().unwrap().value, 15 * 60_000);
        let origin = lint.template.as_ref().unwrap();
        assert_eq!(origin.template.name, "cargo");
        assert_eq!(sources.name(origin.definition.file), "std/rust");
        assert_eq!(sources.snippet(origin.definition), "cargo");
        assert_eq!(sources.snippet(origin.call), "cargo(task: \"clippy\")");
    }

    #[test]
    fn a_trailing_block_overrides_attributes_and_appends_runs() {
        let program = expect_clean(
            r#"template step(cmd: string, timeout: duration = 1m) {
  run "${{ cmd }}"
  timeout = timeout
  retries = 2
  env { A = "1" }
}
pipeline p {
  job a = step(cmd: "make") { run "make check"  timeout = 5m  needs = [b]  env { B = "2" } }
  job b = step(cmd: "true", timeout: 2s)
}"#,
            &[],
        );
        let a = &program.jobs[0];
        let runs: Vec<String> = a.steps.iter().map(|s| s.as_plain().unwrap()).collect();
        assert_eq!(runs, ["make", "make check"]);
        assert_eq!(a.settings.timeout.as_ref().unwrap().value, 300_000);
        assert_eq!(a.settings.retries.as_ref().unwrap().value, 2);
        let env: Vec<&str> = a
            .settings
            .env
            .iter()
            .map(|(k, _)| k.name.as_str())
            .collect();
        assert_eq!(
            env,
            ["B"],
            "a block replaces the template's block of that name"
        );
        assert_eq!(a.needs[0].name, "b");
        assert_eq!(
            program.jobs[1].settings.timeout.as_ref().unwrap().value,
            2000
        );
    }

    #[test]
    fn literals_interpolate_as_text_and_strings_splice() {
        let program = expect_clean(
            r#"template t(n: number, d: duration, p: percent, b: bool, s: string) {
  run "n=${{ n }} d=${{ d }} p=${{ p }} b=${{ b }} s=${{ s }}"
}
pipeline p { job j = t(n: 3, d: 90s, p: 99.5%, b: true, s: "at ${{ git.sha }}!") }"#,
            &[],
        );
        let segments = &program.jobs[0].steps[0].segments;
        assert_eq!(segments.len(), 3, "{segments:?}");
        assert_eq!(
            segments[0],
            Segment::Text("n=3 d=1m30s p=99.5% b=true s=at ".to_string())
        );
        let Segment::Interp(expr) = &segments[1] else {
            panic!("{segments:?}")
        };
        assert!(matches!(&expr.kind, ExprKind::Path(parts) if parts.len() == 2));
        assert_eq!(segments[2], Segment::Text("!".to_string()));
    }

    #[test]
    fn an_alias_qualifies_imported_templates() {
        let program = expect_clean(
            "import \"std/rust\" as rust\npipeline p { job lint = rust.cargo(task: \"fmt\") }",
            &[],
        );
        assert_eq!(
            program.jobs[0].template.as_ref().unwrap().template.name,
            "rust.cargo"
        );
        let (checked, sources) = check_source(
            "import \"std/rust\" as rust\npipeline p { job lint = cargo(task: \"fmt\") }",
        );
        assert_eq!(codes(&checked), ["E0101"]);
        assert!(rendered(&checked, &sources).contains("did you mean `rust.cargo`?"));
    }

    #[test]
    fn bad_arguments_are_e0202_at_the_call_with_the_definition_labelled() {
        let (checked, sources) = check_source(
            r#"import "std/rust"
pipeline p {
  job a = cargo()
  job b = cargo(task: "x", tsak: "y")
  job c = cargo(task: "x", timeout: "10m")
  job d = cargo("x")
  job e = cargo(task: "x", task: "y")
  job f = carg(task: "x")
  job g { needs = [a, b, c, d, e]  run "ok" }
}"#,
        );
        let text = rendered(&checked, &sources);
        assert_eq!(
            codes(&checked),
            ["E0202", "E0202", "E0202", "E0202", "E0202", "E0101"],
            "{text}"
        );
        assert!(
            text.contains("missing argument `task` for template `cargo`"),
            "{text}"
        );
        assert!(text.contains("did you mean `task`?"), "{text}");
        assert!(text.contains("expected duration, found string"), "{text}");
        assert!(text.contains("write 10m, not \"10m\""), "{text}");
        assert!(
            text.contains("`timeout` is declared as duration here"),
            "{text}"
        );
        assert!(text.contains("template arguments are named"), "{text}");
        assert!(text.contains("argument `task` is given twice"), "{text}");
        assert!(text.contains("unknown template `carg`"), "{text}");
        let secondary_in_std = checked.diagnostics.iter().any(|d| {
            d.labels
                .iter()
                .any(|l| !l.primary && sources.name(l.span.file) == "std/rust")
        });
        assert!(secondary_in_std, "{text}");
    }

    #[test]
    fn two_visible_templates_with_one_name_are_e0102() {
        let (checked, sources) = check_source(
            "import \"std/rust\"\ntemplate cargo(task: string) { run \"x\" }\npipeline p { job a { run \"a\" } }",
        );
        let text = rendered(&checked, &sources);
        assert_eq!(codes(&checked), ["E0102"], "{text}");
        assert!(text.contains("first defined here") && text.contains("defined again here"));
    }

    #[test]
    fn a_broken_template_is_reported_once_at_its_definition() {
        let (checked, sources) = check_source(
            r#"template t(x: string, d: duration = "5m", x: bool) { run "${{ x }}"  timout = 5m }
template unused(n: number) { run "a"  timeout = n }
pipeline p { job a = t(x: "1")  job b = t(x: "2") }"#,
        );
        let text = rendered(&checked, &sources);
        assert_eq!(
            codes(&checked),
            ["E0201", "E0102", "E0103", "E0201"],
            "{text}"
        );
        assert!(text.contains("did you mean `timeout`?"), "{text}");
    }

    #[test]
    fn a_template_may_leave_run_to_its_callers() {
        let program = expect_clean(
            "template slow(t: duration = 1h) { timeout = t }\npipeline p { job a = slow() { run \"x\" } }",
            &[],
        );
        assert_eq!(program.jobs[0].steps.len(), 1);
        let (checked, _) = check_source(
            "template slow(t: duration = 1h) { timeout = t }\npipeline p { job a = slow() }",
        );
        assert_eq!(codes(&checked), ["E0104"]);
    }

    #[test]
    fn a_list_parameter_may_feed_a_matrix() {
        let program = expect_clean(
            r#"template each(targets: list<string>) {
  matrix { target = targets }
  run "make ${{ matrix.target }}"
}
pipeline p { job build = each(targets: ["a", "b"]) }"#,
            &[],
        );
        assert_eq!(program.jobs[0].matrix[0].1.len(), 2);
    }

    #[test]
    fn only_jobs_are_made_from_templates() {
        let (checked, sources) =
            check_source("template t() { run \"x\" }\npipeline p { gate g = t() { } }");
        assert_eq!(
            codes(&checked),
            ["E0103"],
            "{}",
            rendered(&checked, &sources)
        );
    }
}
