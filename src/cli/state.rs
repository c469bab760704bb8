//! The one rule that finds a command's state, shared by every command that reads or writes it:
//! `--state-dir DIR` or `--state URL`, else `$PIPE_STATE`, else `.pipe` beside the pipeline file.

use super::exit;
use crate::store::{Location, Store, StoreError};
use std::path::{Path, PathBuf};

/// The environment variable that names the state when no flag does.
pub const STATE_ENV: &str = "PIPE_STATE";

/// `--state` / `--state-dir`, flattened into every state command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StateArgs {
    /// Where the state is: a directory path, or PostgreSQL (`postgres://USER@HOST:PORT/DB?schema=S`
    /// or `host=/socket/dir dbname=DB`; the password from `PGPASSWORD` or ~/.pgpass)
    /// [env: PIPE_STATE; default: `.pipe` beside the pipeline file]
    #[arg(long, value_name = "URL", conflicts_with = "state_dir")]
    pub state: Option<String>,
    /// The state directory [default: `.pipe` beside the pipeline file]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// Where the state is for a command whose pipeline file is `pipeline_file` (the FILE
    /// argument, else `-f/--file`, else `pipeline.pipe` in the current directory).
    pub fn location(&self, pipeline_file: &Path) -> Location {
        if let Some(dir) = &self.state_dir {
            return Location::Directory(dir.clone());
        }
        let named = self.state.clone().or_else(|| {
            std::env::var(STATE_ENV)
                .ok()
                .filter(|value| !value.is_empty())
        });
        match named {
            Some(text) => Location::parse(&text),
            None => Location::beside(pipeline_file),
        }
    }

    /// Builds the store once, at the edge: a usage error (exit 2) when the location cannot
    /// hold state (a file named like the state directory, a malformed URL, a database newer
    /// than this pipe); exit 1 when the database cannot be reached. Shared state keeps the
    /// agent's own files (artifacts, job logs) in `.pipe` beside the pipeline file.
    pub fn open(&self, pipeline_file: &Path) -> Result<(Store, Location), i32> {
        let location = self.location(pipeline_file);
        if let Some(dir) = location.directory() {
            super::require_state_dir(dir)?;
        }
        let local = Location::beside(pipeline_file);
        let local = local.directory().unwrap_or(Path::new(".pipe"));
        match location.open_with_local(local) {
            Ok(store) => Ok((store, location)),
            Err(error) => {
                eprintln!("error: {error}");
                Err(match error {
                    StoreError::Database { .. } | StoreError::Io { .. } => exit::FAILED,
                    _ => exit::USAGE,
                })
            }
        }
    }
}

/// The pipeline file of a command that reads state: FILE, or `-f/--file FILE` (kept so older
/// scripts work), else `pipeline.pipe` in the current directory.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PipelineFileArg {
    /// The pipeline file [default: pipeline.pipe]; `check` and `compile` read stdin for `-`,
    /// `run` also takes a compiled plan (`.json`)
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The same as FILE, as a flag
    #[arg(
        long = "file",
        short = 'f',
        value_name = "FILE",
        conflicts_with = "file"
    )]
    file_flag: Option<PathBuf>,
}

impl PipelineFileArg {
    /// The file named, or `pipeline.pipe` in the current directory.
    pub fn path(&self) -> PathBuf {
        pipeline_file(self.named())
    }

    /// The file named, if any.
    pub fn named(&self) -> Option<&Path> {
        self.file.as_deref().or(self.file_flag.as_deref())
    }
}

/// The pipeline file a command without a FILE argument uses: `-f/--file`, else
/// `pipeline.pipe` in the current directory.
pub fn pipeline_file(file: Option<&Path>) -> PathBuf {
    file.map_or_else(|| PathBuf::from("pipeline.pipe"), Path::to_path_buf)
}
