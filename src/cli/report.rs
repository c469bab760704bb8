//! The one place a back-end error becomes what the user reads and the process's exit code:
//! command modules hand their errors here instead of formatting them themselves.

use crate::deliver::drill::DrillError;
use crate::deliver::manual::ManualError;
use crate::exit;
use crate::run::RunError;

/// Every error a command can stop on. Each back-end error's message already names its cause
/// (the `LockError` shape: `cannot … : {source}`), so it is printed once, not chained again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Rollback(#[from] ManualError),
    #[error(transparent)]
    Drill(#[from] DrillError),
}

impl CliError {
    /// A run that could not start or resume is a usage problem: nothing ran. A rollback by
    /// hand that ran and did not end verified leaves the environment's state unknown.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Run(_) => exit::USAGE,
            CliError::Rollback(error) if error.state_unknown() => exit::ROLLBACK_FAILED,
            CliError::Rollback(_) | CliError::Drill(_) => exit::FAILED,
        }
    }
}

/// Prints `error: MESSAGE` on stderr and returns the exit code the error means.
pub(crate) fn error(error: impl Into<CliError>) -> i32 {
    let error = error.into();
    eprintln!("error: {error}");
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_picks_its_exit_code_and_reads_as_its_message() {
        let refused = CliError::from(RunError::OnlyWithUntil);
        assert_eq!(refused.exit_code(), exit::USAGE);
        assert_eq!(refused.to_string(), "--only and --until cannot be combined");
        let unknown = CliError::from(ManualError::RollbackFailed("smoke failed".into()));
        assert_eq!(unknown.exit_code(), exit::ROLLBACK_FAILED);
        assert_eq!(unknown.to_string(), "smoke failed");
        assert_eq!(
            CliError::from(ManualError::NoTarget).exit_code(),
            exit::FAILED
        );
    }
}
