//! `pipe check`, `pipe compile`, `pipe graph` and `pipe explain`: the static commands.

use super::state::PipelineFileArg;
use super::{exit, stderr_color};
use crate::compilation::{Compilation, compile_file};
use crate::compile::graph;
use crate::diagnostics::{all_codes, explanation};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiagnosticFormat {
    #[default]
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    file: PipelineFileArg,
    /// `json`: one diagnostic per line with code, severity, message, file, line, column
    #[arg(long, value_enum, default_value_t)]
    format: DiagnosticFormat,
}

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    file: PipelineFileArg,
    /// Write the plan here instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Format of diagnostics on failure
    #[arg(long, value_enum, default_value_t)]
    format: DiagnosticFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum GraphFormat {
    #[default]
    Dot,
    Mermaid,
}

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    file: PipelineFileArg,
    /// `dot` (Graphviz) or `mermaid`
    #[arg(long, value_enum, default_value_t)]
    format: GraphFormat,
    /// Leave out an edge when another path already orders the two nodes
    #[arg(long)]
    hide_implied: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0401 (omit to list them all)
    code: Option<String>,
}

/// Prints diagnostics to stderr (text) or stdout (json) and a one-line summary for text;
/// for `check` of a file that compiles, its own `ok — …` line is the one summary.
fn report(compilation: &Compilation, file: &Path, format: DiagnosticFormat, check: bool) {
    if format == DiagnosticFormat::Json {
        print!("{}", compilation.render_json());
        return;
    }
    eprint!("{}", compilation.render(stderr_color()));
    if compilation.failure.is_some() {
        return;
    }
    let (errors, warnings) = (compilation.error_count(), compilation.warning_count());
    if errors > 0 {
        let warnings = if warnings > 0 {
            format!(" and {}", plural(warnings, "warning"))
        } else {
            String::new()
        };
        eprintln!(
            "{}: {}{warnings} found",
            shown(file),
            plural(errors, "error")
        );
    } else if warnings > 0 && !(check && compilation.plan.is_some()) {
        eprintln!("{}: ok, with {}", shown(file), plural(warnings, "warning"));
    }
}

/// One note per secret: the variable its steps read, which is not where it is read from.
fn secret_notes(plan: &crate::compile::plan::Plan) -> String {
    use crate::check::program::SecretSource;
    plan.secrets
        .iter()
        .map(|(name, secret)| {
            let source = match &secret.from {
                SecretSource::Env(from) => format!("${from}"),
                SecretSource::File(path) => format!("file {path}"),
            };
            format!(
                "note: secret `{name}` is exported as ${} to the steps that list it (read from {source})\n",
                name.to_uppercase()
            )
        })
        .collect()
}

/// The FILE argument as messages name it (`-` is standard input).
fn shown(file: &Path) -> String {
    if crate::compilation::is_stdin(file) {
        crate::compilation::STDIN_NAME.to_string()
    } else {
        file.display().to_string()
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

pub fn check(args: &CheckArgs) -> i32 {
    let compilation = compile_file(&args.file.path());
    report(&compilation, &args.file.path(), args.format, true);
    let code = check_outcome(&compilation, args);
    // The process ends right after: freeing a large plan node by node only costs time.
    std::mem::forget(compilation);
    code
}

fn check_outcome(compilation: &Compilation, args: &CheckArgs) -> i32 {
    if compilation.has_errors() {
        return exit::USAGE;
    }
    if args.format == DiagnosticFormat::Text
        && let Some(plan) = &compilation.plan
    {
        let warnings = match compilation.warning_count() {
            0 => String::new(),
            count => format!(", {}", plural(count, "warning")),
        };
        eprintln!(
            "{}: ok — pipeline `{}`, {}{warnings}",
            shown(&args.file.path()),
            plan.pipeline,
            plural(plan.nodes.len(), "node")
        );
        eprint!("{}", secret_notes(plan));
    }
    exit::SUCCESS
}

pub fn compile(args: &CompileArgs) -> i32 {
    let compilation = compile_file(&args.file.path());
    let code = write_plan(&compilation, args);
    // The process ends right after: freeing a large plan node by node only costs time.
    std::mem::forget(compilation);
    code
}

fn write_plan(compilation: &Compilation, args: &CompileArgs) -> i32 {
    let Some(plan) = compilation
        .plan
        .as_ref()
        .filter(|_| !compilation.has_errors())
    else {
        report(compilation, &args.file.path(), args.format, false);
        return exit::USAGE;
    };
    if !compilation.diagnostics.is_empty() {
        report(compilation, &args.file.path(), args.format, false);
    }
    let written = match &args.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            plan.write_json(&mut out).and_then(|()| out.flush())
        }
        Some(path) => crate::fsutil::write_atomic_with(path, |file| plan.write_json(file)),
    };
    match written {
        Ok(()) => exit::SUCCESS,
        Err(source) => {
            let target = args
                .output
                .as_ref()
                .map_or("standard output".to_string(), |p| p.display().to_string());
            super::report::error(super::report::CliError::WriteCompiled { target, source })
        }
    }
}

pub fn graph(args: &GraphArgs) -> i32 {
    let compilation = compile_file(&args.file.path());
    let Some(plan) = compilation
        .plan
        .as_ref()
        .filter(|_| !compilation.has_errors())
    else {
        report(
            &compilation,
            &args.file.path(),
            DiagnosticFormat::Text,
            false,
        );
        return exit::USAGE;
    };
    let options = graph::GraphOptions {
        hide_implied: args.hide_implied,
    };
    match args.format {
        GraphFormat::Dot => print!("{}", graph::to_dot(plan, options)),
        GraphFormat::Mermaid => print!("{}", graph::to_mermaid(plan, options)),
    }
    exit::SUCCESS
}

pub fn explain(args: &ExplainArgs) -> i32 {
    let Some(code) = &args.code else {
        for code in all_codes() {
            let title = explanation(code)
                .and_then(|t| t.lines().next())
                .unwrap_or(code);
            println!("{title}");
        }
        return exit::SUCCESS;
    };
    match explanation(code) {
        Some(text) => {
            print!("{text}");
            exit::SUCCESS
        }
        None => {
            let codes: Vec<&str> = all_codes().collect();
            let hint =
                crate::diagnostics::did_you_mean(&code.to_uppercase(), codes.iter().copied())
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
            super::report::error(super::report::CliError::UnknownCode {
                code: code.clone(),
                hint,
            })
        }
    }
}
