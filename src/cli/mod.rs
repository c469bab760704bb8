//! The command line: argument parsing (clap) and one module per command family, each a thin
//! shell that reads files, calls the phases, prints, and maps outcomes to exit codes.

pub mod audit;
mod check;
pub mod deliver;
mod drill_schedule;
mod fmt;
mod init;
mod lsp;
mod report;
pub mod run;
pub mod state;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::IsTerminal;

pub(crate) use crate::exit;

#[derive(Parser, Debug)]
#[command(
    name = "pipe",
    version,
    about = "Typed pipelines as code: check, compile, run and deliver safely",
    after_help = "Exit codes: 0 success · 1 pipeline failed (any rollback verified) · 2 usage or \
                  compile error · 3 awaiting approval · 4 rollback failed · 130 interrupted"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a pipeline and report every problem (exit 2 on errors; warnings do not fail)
    Check(check::CheckArgs),
    /// Compile a pipeline to its JSON plan (stdout, or -o PATH)
    Compile(check::CompileArgs),
    /// Print the pipeline's DAG as Graphviz dot or Mermaid
    Graph(check::GraphArgs),
    /// Explain a diagnostic code, with a wrong and a fixed example
    Explain(check::ExplainArgs),
    /// Run a pipeline (or a compiled plan): jobs, gates and promotes
    Run(run::RunArgs),
    /// Continue a stopped run: re-runs only the nodes that did not succeed
    Resume(run::ResumeArgs),
    /// List the recorded runs, newest first: id, started, status, pipeline
    Runs(run::RunsArgs),
    /// Show the release plan of each promote: version, rollback target, rollout, triggers
    Plan(deliver::PlanArgs),
    /// Roll an environment back to its previous stable release by hand (no gates)
    Rollback(deliver::RollbackArgs),
    /// Run a restore drill: backup, timed restore, verify, judged against its RTO and RPO
    Drill(deliver::DrillArgs),
    /// List the release ledger: version, digest, status, when, run
    Releases(deliver::ReleasesArgs),
    /// Verify the audit log's hash chain, show it as a timeline, or export it
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Gather releases, gates, approvals, overrides, rollbacks and drills into one report
    Evidence(audit::EvidenceArgs),
    /// Lay pipeline files out the canonical way (FILE, DIR or - for stdin; --check, --diff)
    Fmt(fmt::FmtArgs),
    /// Serve the Language Server Protocol on stdio: diagnostics as you type, explain on hover, fmt
    Lsp,
    /// Write a starter pipeline.pipe for the project in DIR (Cargo, npm, or placeholders)
    Init(init::InitArgs),
    /// Print shell completions
    Completions {
        /// The shell to write completions for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Whether to colour output written to stderr: only on a terminal, and never with `NO_COLOR`.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A state directory that exists but is not a directory (a stray file named `.pipe`) is a usage
/// error (exit 2): read through, it would look like "nothing recorded yet".
pub(crate) fn require_state_dir(dir: &std::path::Path) -> Result<(), i32> {
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => {
            eprintln!(
                "error: the state directory {} is not a directory; move the file away or pass \
                 --state-dir",
                dir.display()
            );
            Err(exit::USAGE)
        }
        _ => Ok(()),
    }
}

/// How a report command prints: for people, or one JSON document for machines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Parses arguments and runs the command, returning the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => check::check(&args),
        Command::Compile(args) => check::compile(&args),
        Command::Graph(args) => check::graph(&args),
        Command::Explain(args) => check::explain(&args),
        Command::Run(args) => run::run(args),
        Command::Resume(args) => run::resume(args),
        Command::Runs(args) => run::runs(&args),
        Command::Audit(command) => audit::audit(command),
        Command::Plan(args) => deliver::plan(&args),
        Command::Rollback(args) => deliver::rollback(&args),
        Command::Drill(args) => deliver::drill(&args),
        Command::Evidence(args) => audit::evidence(&args),
        Command::Init(args) => init::init(&args),
        Command::Fmt(args) => fmt::fmt(&args),
        Command::Lsp => lsp::lsp(),
        Command::Releases(args) => deliver::releases(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pipe", &mut std::io::stdout());
            exit::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and argument of every command, walked through clap's own tree.
    fn undocumented(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            undocumented(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_flag_and_argument_has_help_text() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "pipe", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}
