//! Typed attribute values: reads one expression as the type an attribute expects (duration,
//! name list, …) and reports a wrong one as E0201 with the fix in the help line.

use super::Elaborator;
use crate::check::program::{Millis, Spanned, Value};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::syntax::ast::{Expr, ExprKind, Ident, StrLit, Type};

/// What a reader expects, for the label and the help line of an E0201.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::check) enum Expected {
    String,
    PlainString,
    Duration,
    WholeNumber,
    Bool,
    Name,
    Names,
    Strings,
    Percents,
    Literal,
    MatrixValues,
    Type(TypeWord),
}

/// A declared type, as the word used in messages (for template parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::check) enum TypeWord {
    Number,
    Percent,
    List,
}

impl Expected {
    fn text(self) -> &'static str {
        match self {
            Expected::String => "string",
            Expected::PlainString => "string without `${{ }}`",
            Expected::Duration => "duration",
            Expected::WholeNumber => "whole number",
            Expected::Bool => "bool",
            Expected::Name => "name",
            Expected::Names => "list of names",
            Expected::Strings => "list of strings",
            Expected::Percents => "list of percentages",
            Expected::Literal => "literal",
            Expected::MatrixValues => "list of strings or numbers",
            Expected::Type(TypeWord::Number) => "number",
            Expected::Type(TypeWord::Percent) => "percent",
            Expected::Type(TypeWord::List) => "list",
        }
    }

    /// What each item of an expected list must be.
    fn item(self) -> Expected {
        match self {
            Expected::Names => Expected::Name,
            Expected::Strings | Expected::MatrixValues => Expected::PlainString,
            Expected::Percents => Expected::Type(TypeWord::Percent),
            other => other,
        }
    }

    fn is_list(self) -> bool {
        matches!(
            self,
            Expected::Names
                | Expected::Strings
                | Expected::Percents
                | Expected::MatrixValues
                | Expected::Type(TypeWord::List)
        )
    }

    /// An example of a correct value, for the help line.
    fn example(self) -> &'static str {
        match self {
            Expected::String | Expected::PlainString => "write a string such as `\"text\"`",
            Expected::Duration => "write a duration such as `30s`, `10m` or `1h30m`",
            Expected::WholeNumber => "write a whole number such as `3`",
            Expected::Bool => "write `true` or `false`",
            Expected::Name => "write a name without quotes, such as `staging`",
            Expected::Names => "write a list of names such as `[build, test]`",
            Expected::Strings => "write a list of strings such as `[\"alice\", \"bob\"]`",
            Expected::Percents => "write a list of percentages such as `[10%, 50%, 100%]`",
            Expected::Literal => {
                "write a string, number, bool, duration, percentage or a list of them"
            }
            Expected::MatrixValues => "write a list such as `[\"linux\", \"macos\"]`",
            Expected::Type(TypeWord::Number) => "write a number such as `3`",
            Expected::Type(TypeWord::Percent) => "write a percentage such as `80%`",
            Expected::Type(TypeWord::List) => "write a list such as `[\"a\", \"b\"]`",
        }
    }
}

impl From<&Type> for Expected {
    fn from(ty: &Type) -> Expected {
        match ty {
            Type::String => Expected::String,
            Type::Number => Expected::Type(TypeWord::Number),
            Type::Bool => Expected::Bool,
            Type::Duration => Expected::Duration,
            Type::Percent => Expected::Type(TypeWord::Percent),
            Type::List(_) => Expected::Type(TypeWord::List),
        }
    }
}

/// How a value is described in "found …".
pub(in crate::check) fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(text) if text.as_plain().is_some() => "string".to_string(),
        ExprKind::Str(_) => "interpolated string".to_string(),
        ExprKind::Number(_) => "number".to_string(),
        ExprKind::Bool(_) => "bool".to_string(),
        ExprKind::Duration(_) => "duration".to_string(),
        ExprKind::Percent(_) => "percent".to_string(),
        ExprKind::Path(parts) if parts.len() == 1 => "name".to_string(),
        ExprKind::Path(_) => "dotted name".to_string(),
        ExprKind::List(_) => "list".to_string(),
        ExprKind::Call(call) => format!("call `{}(…)`", call.name()),
        ExprKind::Not(_) | ExprKind::Binary { .. } => "expression".to_string(),
    }
}

/// The type of a value when it can be told without resolving names (`None` for `git.branch`).
pub(in crate::check) fn value_type(expr: &Expr) -> Option<Type> {
    match &expr.kind {
        ExprKind::Str(_) => Some(Type::String),
        ExprKind::Number(_) => Some(Type::Number),
        ExprKind::Bool(_) => Some(Type::Bool),
        ExprKind::Duration(_) => Some(Type::Duration),
        ExprKind::Percent(_) => Some(Type::Percent),
        ExprKind::List(items) => {
            let inner = items.iter().find_map(value_type);
            Some(Type::List(Box::new(inner.unwrap_or(Type::String))))
        }
        // Comparisons and `and`/`or`/`not` are all bool, whatever their operands.
        ExprKind::Not(_) | ExprKind::Binary { .. } => Some(Type::Bool),
        ExprKind::Path(_) | ExprKind::Call(_) => None,
    }
}

/// Whether `expr` can be passed where `ty` is declared: a known type must match, and list items
/// must match the item type (names and calls are left to the rules).
pub(in crate::check) fn fits(expr: &Expr, ty: &Type) -> bool {
    match (&expr.kind, ty) {
        (ExprKind::List(items), Type::List(inner)) => items.iter().all(|item| fits(item, inner)),
        _ => value_type(expr).is_none_or(|found| &found == ty),
    }
}

impl Elaborator<'_> {
    /// E0201 on `expr`: it is not the `expected` kind of value.
    pub(in crate::check) fn mismatch(&mut self, expr: &Expr, expected: Expected) {
        let found = describe(expr);
        self.diagnostics.push(
            Diagnostic::error(
                "E0201",
                format!(
                    "mismatched types: expected {}, found {found}",
                    expected.text()
                ),
            )
            .primary(
                expr.span,
                format!("expected {}, found {found}", expected.text()),
            )
            .help(fix_hint(self.sources, expr, expected)),
        );
    }

    /// A string that may hold `${{ }}` (commands, `version`, `env` values).
    pub(super) fn string(&mut self, expr: &Expr) -> Option<StrLit> {
        match &expr.kind {
            ExprKind::Str(text) => Some(text.clone()),
            _ => self.fail(expr, Expected::String),
        }
    }

    /// A string fixed at compile time (paths, shells, approvers).
    pub(super) fn plain_string(&mut self, expr: &Expr) -> Option<Spanned<String>> {
        match &expr.kind {
            ExprKind::Str(text) => match text.as_plain() {
                Some(plain) => Some(Spanned::new(plain, expr.span)),
                None => self.fail(expr, Expected::PlainString),
            },
            _ => self.fail(expr, Expected::PlainString),
        }
    }

    pub(super) fn duration(&mut self, expr: &Expr) -> Option<Spanned<Millis>> {
        match expr.kind {
            ExprKind::Duration(millis) => Some(Spanned::new(millis, expr.span)),
            _ => self.fail(expr, Expected::Duration),
        }
    }

    /// A non-negative whole number (`retries`, `quorum`).
    pub(super) fn whole_number(&mut self, expr: &Expr) -> Option<Spanned<u32>> {
        match expr.kind {
            ExprKind::Number(number)
                if number >= 0.0 && number.fract() == 0.0 && number <= f64::from(u32::MAX) =>
            {
                // The guard keeps the value inside u32's range, so the cast cannot truncate.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = number as u32;
                Some(Spanned::new(whole, expr.span))
            }
            _ => self.fail(expr, Expected::WholeNumber),
        }
    }

    pub(super) fn bool_value(&mut self, expr: &Expr) -> Option<Spanned<bool>> {
        match expr.kind {
            ExprKind::Bool(value) => Some(Spanned::new(value, expr.span)),
            _ => self.fail(expr, Expected::Bool),
        }
    }

    /// A bare name (`artifact = api_bin`, `extends = base`, `kind = expand`).
    pub(super) fn name(&mut self, expr: &Expr) -> Option<Ident> {
        match &expr.kind {
            ExprKind::Path(parts) if parts.len() == 1 => parts.first().cloned(),
            _ => self.fail(expr, Expected::Name),
        }
    }

    /// `[build, test]`
    pub(super) fn names(&mut self, expr: &Expr) -> Option<Vec<Ident>> {
        self.list(expr, Expected::Names, |item| match &item.kind {
            ExprKind::Path(parts) if parts.len() == 1 => parts.first().cloned(),
            _ => None,
        })
    }

    /// `["alice", "bob"]`
    pub(super) fn strings(&mut self, expr: &Expr) -> Option<Vec<Spanned<String>>> {
        self.list(expr, Expected::Strings, |item| match &item.kind {
            ExprKind::Str(text) => text.as_plain().map(|plain| Spanned::new(plain, item.span)),
            _ => None,
        })
    }

    /// `[10%, 50%, 100%]`
    pub(super) fn percents(&mut self, expr: &Expr) -> Option<Vec<Spanned<f64>>> {
        self.list(expr, Expected::Percents, |item| match item.kind {
            ExprKind::Percent(points) => Some(Spanned::new(points, item.span)),
            _ => None,
        })
    }

    /// `["linux", "macos"]` or `[1, 2]`: a matrix axis, numbers written as their text.
    pub(super) fn matrix_values(&mut self, expr: &Expr) -> Option<Vec<Spanned<String>>> {
        let values = self.list(expr, Expected::MatrixValues, |item| match &item.kind {
            ExprKind::Str(text) => text.as_plain().map(|plain| Spanned::new(plain, item.span)),
            ExprKind::Number(number) => Some(Spanned::new(number_text(*number), item.span)),
            _ => None,
        })?;
        if values.is_empty() {
            self.diagnostics.push(
                Diagnostic::error("E0201", "a matrix axis needs at least one value")
                    .primary(expr.span, "empty list")
                    .help("write the values to run with, such as `[\"linux\", \"macos\"]`"),
            );
            return None;
        }
        Some(values)
    }

    /// A free environment attribute: a literal or a list of literals.
    pub(super) fn literal(&mut self, expr: &Expr) -> Option<Value> {
        match literal_value(expr) {
            Some(value) => Some(value),
            None => {
                let culprit = first_non_literal(expr).unwrap_or(expr);
                self.fail(culprit, Expected::Literal)
            }
        }
    }

    /// Reads every item of a list with `item`; reports the first item that does not fit.
    fn list<T>(
        &mut self,
        expr: &Expr,
        expected: Expected,
        item: impl Fn(&Expr) -> Option<T>,
    ) -> Option<Vec<T>> {
        let ExprKind::List(items) = &expr.kind else {
            return self.fail(expr, expected);
        };
        let mut values = Vec::with_capacity(items.len());
        for element in items {
            match item(element) {
                Some(value) => values.push(value),
                None => return self.fail(element, expected.item()),
            }
        }
        Some(values)
    }

    fn fail<T>(&mut self, expr: &Expr, expected: Expected) -> Option<T> {
        self.mismatch(expr, expected);
        None
    }
}

/// How to write `expr` as the expected value, from what the user wrote.
pub(in crate::check) fn fix_hint(sources: &SourceMap, expr: &Expr, expected: Expected) -> String {
    let written = sources.snippet(expr.span).trim();
    if let (ExprKind::Number(number), Expected::Type(TypeWord::Percent)) = (&expr.kind, expected) {
        return format!("write {}%", number_text(*number));
    }
    let unquoted = match &expr.kind {
        ExprKind::Str(text) => text.as_plain(),
        _ => None,
    };
    let quoted_word =
        unquoted.filter(|text| !text.is_empty() && !text.contains(char::is_whitespace));
    if let Some(word) = quoted_word
        && reads_as(&word, expected)
    {
        return format!("write {word}, not \"{word}\"");
    }
    match (&expr.kind, expected) {
        (ExprKind::Str(_), Expected::PlainString) => {
            "this value is fixed before the run starts, so it cannot hold `${{ … }}`".to_string()
        }
        (ExprKind::List(_), _) => expected.example().to_string(),
        (_, _) if expected.is_list() && !written.is_empty() => {
            format!("write a list: `[{written}]`")
        }
        (ExprKind::Str(_), _) => expected.example().to_string(),
        (_, Expected::String | Expected::PlainString) if !written.is_empty() => {
            format!("write it as a string: `\"{written}\"`")
        }
        _ => expected.example().to_string(),
    }
}

/// Whether `word`, written without quotes, would be a value of the expected kind (so the fix
/// for `"10m"` is `10m`, but `"yes"` gets no such advice where a bool is expected).
fn reads_as(word: &str, expected: Expected) -> bool {
    let is_number = |text: &str| !text.is_empty() && text.parse::<f64>().is_ok();
    match expected {
        Expected::Bool => matches!(word, "true" | "false"),
        Expected::WholeNumber | Expected::Type(TypeWord::Number) => is_number(word),
        Expected::Type(TypeWord::Percent) => word.strip_suffix('%').is_some_and(is_number),
        Expected::Duration => {
            let units = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
            units.len() < word.len()
                && !units.is_empty()
                && units
                    .chars()
                    .all(|c| matches!(c, 'm' | 's' | 'h' | 'd') || c.is_ascii_digit())
        }
        Expected::Name => {
            word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

fn literal_value(expr: &Expr) -> Option<Value> {
    match &expr.kind {
        ExprKind::Str(text) => text.as_plain().map(Value::String),
        ExprKind::Number(number) => Some(Value::Number(*number)),
        ExprKind::Bool(value) => Some(Value::Bool(*value)),
        ExprKind::Duration(millis) => Some(Value::Duration(*millis)),
        ExprKind::Percent(points) => Some(Value::Percent(*points)),
        ExprKind::List(items) => items
            .iter()
            .map(literal_value)
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        _ => None,
    }
}

fn first_non_literal(expr: &Expr) -> Option<&Expr> {
    match &expr.kind {
        ExprKind::List(items) => items.iter().find(|item| literal_value(item).is_none()),
        _ => None,
    }
}

/// A number as it is written in text: `3`, not `3.0`.
pub(in crate::check) fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        format!("{number}")
    }
}

/// A duration in the largest units that divide it: `15m`, `1h30m`, `250ms`.
pub(in crate::check) fn duration_text(millis: Millis) -> String {
    if millis == 0 {
        return "0s".to_string();
    }
    let units: [(&str, Millis); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = millis;
    let mut text = String::new();
    for (unit, size) in units {
        if rest >= size {
            text.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_unquoted_only_when_that_fixes_them() {
        assert!(reads_as("10m", Expected::Duration));
        assert!(reads_as("1h30m", Expected::Duration));
        assert!(!reads_as("soon", Expected::Duration));
        assert!(!reads_as("10", Expected::Duration));
        assert!(reads_as("true", Expected::Bool));
        assert!(!reads_as("yes", Expected::Bool));
        assert!(reads_as("80%", Expected::Type(TypeWord::Percent)));
        assert!(reads_as("api_bin", Expected::Name));
        assert!(!reads_as("a b", Expected::Name));
        assert!(!reads_as("x", Expected::String));
    }

    #[test]
    fn durations_and_numbers_print_as_written() {
        assert_eq!(duration_text(900_000), "15m");
        assert_eq!(duration_text(5_400_000), "1h30m");
        assert_eq!(duration_text(250), "250ms");
        assert_eq!(duration_text(0), "0s");
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(3.5), "3.5");
    }
}
