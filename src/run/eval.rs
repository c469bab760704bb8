//! Run-time evaluation of the plan's expressions and `${{ }}` templates against [`Bindings`]
//! (dotted names → typed literals), and parsing of typed literals from process output.

use crate::compile::plan::{ExprTree, Expression, Literal, Template, TemplatePart};
use crate::syntax::ast::{BinaryOp, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Values visible to expressions, by dotted name (`git.sha`, `jobs.test.outputs.coverage`).
/// Delivery adds its own (`artifact.path`, `rollout.weight`, …) with [`Bindings::set`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bindings {
    values: BTreeMap<String, Literal>,
    /// Names whose value held a secret and was stored as `***`: reading one is an error,
    /// never the literal mask.
    redacted: BTreeSet<String>,
}

impl Bindings {
    pub fn new() -> Bindings {
        Bindings::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: Literal) {
        self.values.insert(name.into(), value);
    }

    pub fn set_string(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.set(name, Literal::String(value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&Literal> {
        self.values.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Binds `jobs.J.succeeded|duration|exit_code|outputs.K` for a finished job.
    pub fn set_job_result(&mut self, job: &str, result: &JobFacts) {
        let prefix = format!("jobs.{job}");
        self.set(
            format!("{prefix}.succeeded"),
            Literal::Bool(result.succeeded),
        );
        self.set(
            format!("{prefix}.duration"),
            Literal::Duration(result.duration_ms),
        );
        let code = result.exit_code.unwrap_or(-1);
        self.set(
            format!("{prefix}.exit_code"),
            Literal::Number(f64::from(code)),
        );
        for (key, value) in &result.outputs {
            self.set(format!("{prefix}.outputs.{key}"), value.clone());
        }
        for key in &result.redacted_outputs {
            self.redacted.insert(format!("{prefix}.outputs.{key}"));
        }
    }
}

/// What a finished job contributes to the bindings.
#[derive(Debug, Clone, Default)]
pub struct JobFacts {
    pub succeeded: bool,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub outputs: BTreeMap<String, Literal>,
    /// Outputs that held a secret (their stored value is `***`).
    pub redacted_outputs: BTreeSet<String>,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    UnknownName(String),
    /// The value held a secret and only its redacted form was kept.
    Redacted(String),
    TypeMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },
    NotBool {
        found: String,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::UnknownName(name) => write!(f, "`{name}` has no value in this run"),
            EvalError::Redacted(name) => write!(
                f,
                "`{name}` held a secret and was redacted, so its value cannot be used; read the secret itself from its environment variable instead"
            ),
            EvalError::TypeMismatch { op, lhs, rhs } => {
                write!(
                    f,
                    "cannot compare {lhs} {op} {rhs}: the operands differ in type"
                )
            }
            EvalError::NotBool { found } => write!(f, "expected a bool, found {found}"),
        }
    }
}

impl std::error::Error for EvalError {}

pub fn eval(tree: &ExprTree, bindings: &Bindings) -> Result<Literal, EvalError> {
    match tree {
        ExprTree::Lit(literal) => Ok(literal.clone()),
        ExprTree::Name(path) => {
            let name = path.join(".");
            if bindings.redacted.contains(&name) {
                return Err(EvalError::Redacted(name));
            }
            bindings
                .get(&name)
                .cloned()
                .ok_or(EvalError::UnknownName(name))
        }
        ExprTree::Not(inner) => Ok(Literal::Bool(!eval_bool(inner, bindings)?)),
        ExprTree::Binary { op, lhs, rhs } => eval_binary(*op, lhs, rhs, bindings),
    }
}

/// Evaluates a condition (`require`, `warn`, `when`).
pub fn eval_bool(tree: &ExprTree, bindings: &Bindings) -> Result<bool, EvalError> {
    match eval(tree, bindings)? {
        Literal::Bool(value) => Ok(value),
        other => Err(EvalError::NotBool {
            found: describe(&other),
        }),
    }
}

pub fn eval_condition(expression: &Expression, bindings: &Bindings) -> Result<bool, EvalError> {
    eval_bool(&expression.tree, bindings)
}

fn eval_binary(
    op: BinaryOp,
    lhs: &ExprTree,
    rhs: &ExprTree,
    bindings: &Bindings,
) -> Result<Literal, EvalError> {
    match op {
        // Short-circuit, so `a and jobs.x.outputs.k` does not need `k` when `a` is false.
        BinaryOp::And => Ok(Literal::Bool(
            eval_bool(lhs, bindings)? && eval_bool(rhs, bindings)?,
        )),
        BinaryOp::Or => Ok(Literal::Bool(
            eval_bool(lhs, bindings)? || eval_bool(rhs, bindings)?,
        )),
        _ => {
            let left = eval(lhs, bindings)?;
            let right = eval(rhs, bindings)?;
            compare(op, &left, &right).map(Literal::Bool)
        }
    }
}

fn compare(op: BinaryOp, left: &Literal, right: &Literal) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (left, right) {
        (Literal::String(a), Literal::String(b)) => Some(a.cmp(b)),
        (Literal::Number(a), Literal::Number(b)) | (Literal::Percent(a), Literal::Percent(b)) => {
            a.partial_cmp(b)
        }
        (Literal::Duration(a), Literal::Duration(b)) => Some(a.cmp(b)),
        (Literal::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => {
            return Err(EvalError::TypeMismatch {
                op: op.symbol(),
                lhs: describe(left),
                rhs: describe(right),
            });
        }
    };
    let Some(ordering) = ordering else {
        return Ok(op == BinaryOp::Ne); // NaN compares unequal to everything
    };
    Ok(match op {
        BinaryOp::Eq => ordering == Ordering::Equal,
        BinaryOp::Ne => ordering != Ordering::Equal,
        BinaryOp::Lt => ordering == Ordering::Less,
        BinaryOp::Le => ordering != Ordering::Greater,
        BinaryOp::Gt => ordering == Ordering::Greater,
        BinaryOp::Ge => ordering != Ordering::Less,
        BinaryOp::And | BinaryOp::Or => false,
    })
}

/// A value with its type, for messages: `percent 83.5%`.
pub fn describe(literal: &Literal) -> String {
    let ty = match literal {
        Literal::String(_) => "string",
        Literal::Number(_) => "number",
        Literal::Bool(_) => "bool",
        Literal::Duration(_) => "duration",
        Literal::Percent(_) => "percent",
    };
    format!("{ty} {}", display(literal))
}

/// How a value reads inside a string: `83.5%`, `1m30s`, `42`, `true`.
pub fn display(literal: &Literal) -> String {
    match literal {
        Literal::String(text) => text.clone(),
        Literal::Number(n) => format_number(*n),
        Literal::Bool(b) => b.to_string(),
        Literal::Duration(ms) => format_duration_ms(*ms),
        Literal::Percent(p) => format!("{}%", format_number(*p)),
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `1h30m`, `250ms`, `0s`.
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", ms as f64 / 1000.0)
        };
    }
    let mut seconds = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

/// Evaluates a template; each hole becomes its value's [`display`] form.
pub fn render(template: &Template, bindings: &Bindings) -> Result<String, EvalError> {
    let mut out = String::new();
    for part in &template.parts {
        match part {
            TemplatePart::Text(text) => out.push_str(text),
            TemplatePart::Expr(expression) => {
                out.push_str(&display(&eval(&expression.tree, bindings)?))
            }
        }
    }
    Ok(out)
}

/// Renders a template, leaving unresolvable holes as `${{ source }}` (for dry runs).
pub fn render_lenient(template: &Template, bindings: &Bindings) -> String {
    let mut out = String::new();
    for part in &template.parts {
        match part {
            TemplatePart::Text(text) => out.push_str(text),
            TemplatePart::Expr(expression) => match eval(&expression.tree, bindings) {
                Ok(value) => out.push_str(&display(&value)),
                Err(_) => out.push_str(&format!("${{{{ {} }}}}", expression.source)),
            },
        }
    }
    out
}

/// Every dotted name an expression reads (for dry runs: what a gate reads).
pub fn names_read(tree: &ExprTree, out: &mut Vec<String>) {
    match tree {
        ExprTree::Lit(_) => {}
        ExprTree::Name(path) => {
            let name = path.join(".");
            if !out.contains(&name) {
                out.push(name);
            }
        }
        ExprTree::Not(inner) => names_read(inner, out),
        ExprTree::Binary { lhs, rhs, .. } => {
            names_read(lhs, out);
            names_read(rhs, out);
        }
    }
}

/// Parses process output as a literal of `ty`: `83.5%`, `250ms`, `1h30m`, `42`, `true`.
/// A value that is not a literal of its declared type, with an example of one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{text}` is not a {ty} (expected {example})")]
pub struct NotALiteral {
    pub text: String,
    pub ty: Type,
    pub example: &'static str,
}

pub fn parse_typed(text: &str, ty: &Type) -> Result<Literal, NotALiteral> {
    let text = text.trim();
    let example = match ty {
        Type::String => return Ok(Literal::String(text.to_string())),
        Type::Number => "42 or 3.5",
        Type::Bool => "true or false",
        Type::Duration => "250ms, 30s or 1h30m",
        Type::Percent => "83.5%",
        Type::List(_) => "a comma-separated list",
    };
    let parsed = match ty {
        Type::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Literal::Number),
        Type::Bool => match text {
            "true" => Some(Literal::Bool(true)),
            "false" => Some(Literal::Bool(false)),
            _ => None,
        },
        Type::Duration => parse_duration_ms(text).map(Literal::Duration),
        Type::Percent => text
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| (0.0..=100.0).contains(n))
            .map(Literal::Percent),
        Type::List(item) => parse_list(text, item),
        Type::String => None,
    };
    parsed.ok_or_else(|| NotALiteral {
        text: text.to_string(),
        ty: ty.clone(),
        example,
    })
}

/// Lists have no literal form at run time; a list output is kept as its comma-separated text
/// once every element has been checked against the element type.
fn parse_list(text: &str, item: &Type) -> Option<Literal> {
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let all_valid = inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .all(|part| parse_typed(part, item).is_ok());
    all_valid.then(|| Literal::String(inner.trim().to_string()))
}

/// `250ms`, `30s`, `5m`, `1h`, `7d` and compounds such as `1h30m`.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..digits_end].parse().ok()?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return None,
        };
        total = total.checked_add((number * factor).round() as u64)?;
        rest = &rest[unit_end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(dotted: &str) -> ExprTree {
        ExprTree::Name(dotted.split('.').map(String::from).collect())
    }

    fn binary(op: BinaryOp, lhs: ExprTree, rhs: ExprTree) -> ExprTree {
        ExprTree::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    #[test]
    fn compares_job_outputs_by_type() {
        let mut bindings = Bindings::new();
        let mut facts = JobFacts {
            succeeded: true,
            duration_ms: 1500,
            ..JobFacts::default()
        };
        facts
            .outputs
            .insert("coverage".into(), Literal::Percent(83.5));
        bindings.set_job_result("test", &facts);
        let tree = binary(
            BinaryOp::Ge,
            name("jobs.test.outputs.coverage"),
            ExprTree::Lit(Literal::Percent(80.0)),
        );
        assert_eq!(eval_bool(&tree, &bindings), Ok(true));
        let slow = binary(
            BinaryOp::Lt,
            name("jobs.test.duration"),
            ExprTree::Lit(Literal::Duration(1000)),
        );
        assert_eq!(eval_bool(&slow, &bindings), Ok(false));
    }

    #[test]
    fn reports_unknown_names_and_type_mismatches() {
        let bindings = Bindings::new();
        assert_eq!(
            eval(&name("git.sha"), &bindings),
            Err(EvalError::UnknownName("git.sha".into()))
        );
        let mixed = binary(
            BinaryOp::Gt,
            ExprTree::Lit(Literal::Percent(1.0)),
            ExprTree::Lit(Literal::Duration(900)),
        );
        assert!(matches!(
            eval(&mixed, &bindings),
            Err(EvalError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn renders_templates_with_display_forms() {
        let mut bindings = Bindings::new();
        bindings.set("rollout.weight", Literal::Number(10.0));
        bindings.set_string("env.url", "http://x");
        let template = Template {
            parts: vec![
                TemplatePart::Text("deploy ".into()),
                TemplatePart::Expr(Expression {
                    source: "env.url".into(),
                    tree: name("env.url"),
                }),
                TemplatePart::Text(" --weight ".into()),
                TemplatePart::Expr(Expression {
                    source: "rollout.weight".into(),
                    tree: name("rollout.weight"),
                }),
            ],
        };
        assert_eq!(
            render(&template, &bindings).unwrap(),
            "deploy http://x --weight 10"
        );
    }

    #[test]
    fn parses_typed_output_values() {
        assert_eq!(
            parse_typed("83.5%", &Type::Percent),
            Ok(Literal::Percent(83.5))
        );
        assert_eq!(
            parse_typed("1h30m", &Type::Duration),
            Ok(Literal::Duration(5_400_000))
        );
        assert_eq!(
            parse_typed(" 42 ", &Type::Number),
            Ok(Literal::Number(42.0))
        );
        assert!(
            parse_typed("83.5", &Type::Percent)
                .unwrap_err()
                .to_string()
                .contains("not a percent")
        );
        assert!(parse_typed("yes", &Type::Bool).is_err());
        assert_eq!(format_duration_ms(90_000), "1m30s");
    }
}
