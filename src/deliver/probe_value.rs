//! Probe values: reading a probe's stdout as a literal of its declared type (`0.8%`, `250ms`,
//! `1m30s`, `42`; bool probes use the exit status) and printing values the way a user writes them.

use crate::compile::plan::Literal;
use crate::run::eval;
use crate::syntax::ast::Type;
use std::fmt;

/// A typed value a watch condition compares. Durations are milliseconds, percents are points.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeValue {
    Number(f64),
    Percent(f64),
    Duration(u64),
    Bool(bool),
    String(String),
}

impl ProbeValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeValue::Number(_) => "number",
            ProbeValue::Percent(_) => "percent",
            ProbeValue::Duration(_) => "duration",
            ProbeValue::Bool(_) => "bool",
            ProbeValue::String(_) => "string",
        }
    }
}

impl From<&Literal> for ProbeValue {
    fn from(literal: &Literal) -> ProbeValue {
        match literal {
            Literal::String(text) => ProbeValue::String(text.clone()),
            Literal::Number(n) => ProbeValue::Number(*n),
            Literal::Bool(b) => ProbeValue::Bool(*b),
            Literal::Duration(ms) => ProbeValue::Duration(*ms),
            Literal::Percent(p) => ProbeValue::Percent(*p),
        }
    }
}

impl fmt::Display for ProbeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeValue::Number(n) => write!(f, "{n}"),
            ProbeValue::Percent(p) => write!(f, "{p}%"),
            ProbeValue::Duration(ms) => f.write_str(&format_duration(*ms)),
            ProbeValue::Bool(b) => write!(f, "{b}"),
            ProbeValue::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// `250ms`, `1.5s`, `30s`, `1m30s`, `2h`: the way a user would write it.
pub fn format_duration(ms: u64) -> String {
    eval::format_duration_ms(ms)
}

/// Why a probe gave no value: the sample is a breach, and this is its evidence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// The command failed: its status ("exit status 7", "timed out after 5s").
    #[error("probe failed ({0})")]
    Failed(String),
    /// The last non-empty line of its output, shortened.
    #[error("unreadable output {line:?}, expected a {ty}")]
    Unreadable { line: String, ty: Type },
    #[error("probe runner panicked")]
    RunnerPanicked,
}

/// How one run of a probe's command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRun {
    pub succeeded: bool,
    /// "exit status 7", "timed out after 5s", "could not start: …": shown when it failed.
    pub status: String,
    pub stdout: String,
}

/// Reads a probe run as a value of `ty`. A bool probe is its exit status; any other probe
/// must succeed and print one literal (its last non-empty line is read, so tools that print
/// a banner first still work). The error says what was wrong, for the breach evidence.
pub fn read_probe(ty: &Type, run: &ProbeRun) -> Result<ProbeValue, ProbeError> {
    if *ty == Type::Bool {
        return Ok(ProbeValue::Bool(run.succeeded));
    }
    if !run.succeeded {
        return Err(ProbeError::Failed(run.status.clone()));
    }
    let line = run
        .stdout
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("");
    parse_literal(ty, line).ok_or_else(|| ProbeError::Unreadable {
        line: shorten(line),
        ty: ty.clone(),
    })
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        return text.to_string();
    }
    let head: String = text.chars().take(LIMIT).collect();
    format!("{head}…")
}

/// Parses `text` as a literal of `ty` (the runner's typed-output rules); `None` when it is not
/// one. Lists have no probe form.
pub fn parse_literal(ty: &Type, text: &str) -> Option<ProbeValue> {
    if matches!(ty, Type::List(_)) {
        return None;
    }
    eval::parse_typed(text, ty)
        .ok()
        .map(|literal| ProbeValue::from(&literal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_run(stdout: &str) -> ProbeRun {
        ProbeRun {
            succeeded: true,
            status: "exit status 0".to_string(),
            stdout: stdout.to_string(),
        }
    }

    #[test]
    fn reads_each_type() {
        assert_eq!(
            read_probe(&Type::Percent, &ok_run("0.8%\n")),
            Ok(ProbeValue::Percent(0.8))
        );
        assert_eq!(
            read_probe(&Type::Duration, &ok_run("250ms")),
            Ok(ProbeValue::Duration(250))
        );
        assert_eq!(
            read_probe(&Type::Duration, &ok_run("1m30s")),
            Ok(ProbeValue::Duration(90_000))
        );
        assert_eq!(
            read_probe(&Type::Number, &ok_run(" 42 ")),
            Ok(ProbeValue::Number(42.0))
        );
        assert_eq!(
            read_probe(&Type::Percent, &ok_run("starting\n5%\n\n")),
            Ok(ProbeValue::Percent(5.0))
        );
    }

    #[test]
    fn bool_probe_is_its_exit_status() {
        let mut run = ok_run("whatever");
        assert_eq!(read_probe(&Type::Bool, &run), Ok(ProbeValue::Bool(true)));
        run.succeeded = false;
        assert_eq!(read_probe(&Type::Bool, &run), Ok(ProbeValue::Bool(false)));
    }

    #[test]
    fn unreadable_or_failed_output_is_an_error_that_says_why() {
        let error = read_probe(&Type::Percent, &ok_run("oops"))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "unreadable output \"oops\", expected a percent");
        assert!(read_probe(&Type::Percent, &ok_run("0.8")).is_err());
        assert!(read_probe(&Type::Percent, &ok_run("120%")).is_err());
        assert!(read_probe(&Type::Number, &ok_run("")).is_err());
        assert!(read_probe(&Type::Number, &ok_run("NaN")).is_err());
        assert!(read_probe(&Type::Duration, &ok_run("5x")).is_err());
        let failed = ProbeRun {
            succeeded: false,
            status: "exit status 7".to_string(),
            stdout: "0.1%".to_string(),
        };
        assert_eq!(
            read_probe(&Type::Percent, &failed).unwrap_err().to_string(),
            "probe failed (exit status 7)"
        );
    }

    #[test]
    fn durations_print_as_written() {
        assert_eq!(format_duration(250), "250ms");
        assert_eq!(format_duration(1500), "1.5s");
        assert_eq!(format_duration(30_000), "30s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(3_600_000), "1h");
        assert_eq!(ProbeValue::Percent(5.0).to_string(), "5%");
        assert_eq!(ProbeValue::Percent(0.8).to_string(), "0.8%");
    }
}
