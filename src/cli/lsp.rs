//! `pipe lsp`: the language server (`crate::lsp`) on stdio; this module only wires stdio up
//! and maps the outcome to an exit code.

use super::exit;
use super::report::{self, CliError};
use lsp_server::Connection;

pub fn lsp() -> i32 {
    let (connection, io_threads) = Connection::stdio();
    let served = crate::lsp::serve(&connection);
    drop(connection);
    let joined = io_threads.join();
    match (served, joined) {
        (Ok(()), Ok(())) => exit::SUCCESS,
        (Err(error), _) => report::error(CliError::Lsp(error)),
        (_, Err(error)) => report::error(CliError::LspIo(error)),
    }
}
