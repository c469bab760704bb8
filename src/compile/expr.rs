//! Lowering of expressions and interpolated strings into their plan form. Names that are known
//! at compile time (matrix values, environment attributes, template literals) become text.

use super::plan::{ExprTree, Expression, Literal, Template, TemplatePart};
use crate::check::program::Value;
use crate::diagnostics::SourceMap;
use crate::syntax::ast::{Expr, ExprKind, Segment, StrLit};
use std::collections::BTreeMap;

/// Values substituted at compile time, by dotted name (`matrix.os`, `env.url`, `env.name`).
#[derive(Debug, Default, Clone)]
pub struct StaticNames {
    values: BTreeMap<String, Literal>,
}

impl StaticNames {
    pub fn with(mut self, name: impl Into<String>, value: Literal) -> StaticNames {
        self.values.insert(name.into(), value);
        self
    }

    fn get(&self, path: &[String]) -> Option<&Literal> {
        self.values.get(&path.join("."))
    }
}

pub struct Lowerer<'a> {
    pub sources: &'a SourceMap,
}

impl Lowerer<'_> {
    pub fn template(&self, text: &StrLit, names: &StaticNames) -> Template {
        let mut parts: Vec<TemplatePart> = Vec::new();
        for segment in &text.segments {
            let part = match segment {
                Segment::Text(t) => TemplatePart::Text(t.clone()),
                Segment::Interp(expr) => match self.tree(expr, names) {
                    // A matrix value or environment attribute is a value, not the author's
                    // text in this string: it stays a hole, so a command quotes it as data.
                    tree @ ExprTree::Lit(Literal::String(_))
                        if matches!(expr.kind, ExprKind::Path(_)) =>
                    {
                        TemplatePart::Expr(Expression {
                            source: self.sources.snippet(expr.span).trim().to_string(),
                            tree,
                        })
                    }
                    ExprTree::Lit(literal) => TemplatePart::Text(literal_text(&literal)),
                    tree => TemplatePart::Expr(Expression {
                        source: self.sources.snippet(expr.span).trim().to_string(),
                        tree,
                    }),
                },
            };
            push_merged(&mut parts, part);
        }
        Template { parts }
    }

    pub fn expression(&self, expr: &Expr, names: &StaticNames) -> Expression {
        Expression {
            source: self.sources.snippet(expr.span).trim().to_string(),
            tree: self.tree(expr, names),
        }
    }

    fn tree(&self, expr: &Expr, names: &StaticNames) -> ExprTree {
        match &expr.kind {
            ExprKind::Str(text) => ExprTree::Lit(Literal::String(self.flat_text(text, names))),
            ExprKind::Number(n) => ExprTree::Lit(Literal::Number(*n)),
            ExprKind::Bool(b) => ExprTree::Lit(Literal::Bool(*b)),
            ExprKind::Duration(ms) => ExprTree::Lit(Literal::Duration(*ms)),
            ExprKind::Percent(p) => ExprTree::Lit(Literal::Percent(*p)),
            ExprKind::Path(parts) => {
                let path: Vec<String> = parts.iter().map(|p| p.name.clone()).collect();
                match names.get(&path) {
                    Some(value) => ExprTree::Lit(value.clone()),
                    None => ExprTree::Name(path),
                }
            }
            ExprKind::Not(inner) => ExprTree::Not(Box::new(self.tree(inner, names))),
            ExprKind::Binary { op, lhs, rhs, .. } => ExprTree::Binary {
                op: *op,
                lhs: Box::new(self.tree(lhs, names)),
                rhs: Box::new(self.tree(rhs, names)),
            },
            // Lists and calls are not values of the expression language; the checker rejects
            // them where a value is expected, so only their text is kept.
            ExprKind::List(_) | ExprKind::Call(_) => {
                ExprTree::Lit(Literal::String(self.sources.snippet(expr.span).to_string()))
            }
        }
    }

    /// A string literal used as a value inside an expression: static parts only.
    fn flat_text(&self, text: &StrLit, names: &StaticNames) -> String {
        self.template(text, names)
            .parts
            .iter()
            .map(|part| match part {
                TemplatePart::Text(t) => t.clone(),
                TemplatePart::Expr(Expression {
                    tree: ExprTree::Lit(literal),
                    ..
                }) => literal_text(literal),
                TemplatePart::Expr(e) => format!("${{{{ {} }}}}", e.source),
            })
            .collect()
    }
}

fn push_merged(parts: &mut Vec<TemplatePart>, part: TemplatePart) {
    if let (Some(TemplatePart::Text(last)), TemplatePart::Text(next)) = (parts.last_mut(), &part) {
        last.push_str(next);
        return;
    }
    parts.push(part);
}

/// How a literal reads when interpolated into a command: `80%`, `30s`, `42`.
pub fn literal_text(literal: &Literal) -> String {
    match literal {
        Literal::String(s) => s.clone(),
        Literal::Number(n) => format_number(*n),
        Literal::Bool(b) => b.to_string(),
        Literal::Duration(ms) => format_duration(*ms),
        Literal::Percent(p) => format!("{}%", format_number(*p)),
    }
}

pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The shortest spelling of a duration in the language's own units (`1h30m`, `250ms`).
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let units = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = ms;
    let mut out = String::new();
    for (unit, size) in units {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// An environment attribute as a plan literal (lists, which have no literal form, as text).
pub fn value_literal(value: &Value) -> Literal {
    match value {
        Value::String(s) => Literal::String(s.clone()),
        Value::Number(n) => Literal::Number(*n),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Duration(ms) => Literal::Duration(*ms),
        Value::Percent(p) => Literal::Percent(*p),
        Value::List(items) => Literal::String(
            items
                .iter()
                .map(|v| literal_text(&value_literal(v)))
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_largest_units() {
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(250), "250ms");
        assert_eq!(format_duration(600_000), "10m");
    }

    #[test]
    fn numbers_print_without_needless_fraction() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(99.9), "99.9");
        assert_eq!(literal_text(&Literal::Percent(80.0)), "80%");
    }
}
