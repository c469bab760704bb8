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
            let help = did_you_mean(&name, self.names()).unwrap_or_else(|| {
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
        Type::List(_) => ExprKind::List(Vec::new()),
    };
    Expr { kind, span }
}

/// Checks a template definition on its own: parameter names are unique, defaults have the
/// declared type, and the body is a valid job body (with stand-ins for parameters).
pub(super) fn check_definition(
    template: &Template,
    sources: &SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) {
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
    let body = substitute_body(&template.body, &values);
    super::elaborate::check_template_body(&body, sources, diagnostics);
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
