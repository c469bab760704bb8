//! Location: where a command's state lives, as given by `--state URL`, `--state-dir DIR` or
//! the default `.pipe` beside the pipeline file, and the one place a [`Store`] is built from it.

use super::pg::PgStore;
use super::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local state directory (the embedded default).
    Directory(PathBuf),
    /// A PostgreSQL server (`postgres://`, `postgresql://` or libpq's `key=value` form). The
    /// text is kept only to say which form was given, never printed: it may hold a password.
    Postgres(String),
}

impl Location {
    /// Reads a `--state` / `PIPE_STATE` value: a PostgreSQL URL or connection string, or else
    /// a directory path.
    pub fn parse(text: &str) -> Location {
        let is_url = ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| text.starts_with(scheme));
        let is_keywords = text
            .split_whitespace()
            .next()
            .is_some_and(|first| first.starts_with("host=") || first.starts_with("dbname="));
        if is_url || is_keywords {
            Location::Postgres(text.to_string())
        } else {
            Location::Directory(PathBuf::from(text))
        }
    }

    /// The `.pipe` directory beside `pipeline_file`.
    pub fn beside(pipeline_file: &Path) -> Location {
        let dir = match pipeline_file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Location::Directory(dir.join(".pipe"))
    }

    /// The directory, when the state is local.
    pub fn directory(&self) -> Option<&Path> {
        match self {
            Location::Directory(dir) => Some(dir),
            Location::Postgres(_) => None,
        }
    }

    /// Builds the store. A directory is made absolute, so paths handed to steps (the stored
    /// artifact, logs) stay valid whatever directory a step runs in. Shared state keeps the
    /// agent's own files (artifacts, job logs) under `local`.
    pub fn open_with_local(&self, local: &Path) -> Result<Store, StoreError> {
        match self {
            Location::Directory(dir) => Ok(Store::directory(&absolute(dir))),
            Location::Postgres(text) => {
                let state = PgStore::connect(text)?;
                Ok(Store::with_state(Arc::new(state), &absolute(local)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keyword_strings_select_postgres_and_anything_else_is_a_directory() {
        for text in [
            "postgres://ci@db:5432/pipe",
            "postgresql://db/pipe?schema=team",
            "host=/var/run/postgresql dbname=pipe",
        ] {
            assert!(
                matches!(Location::parse(text), Location::Postgres(_)),
                "{text}"
            );
        }
        assert_eq!(
            Location::parse("ci/.pipe"),
            Location::Directory(PathBuf::from("ci/.pipe"))
        );
        assert_eq!(
            Location::beside(Path::new("ci/x.pipe")),
            Location::Directory(PathBuf::from("ci/.pipe"))
        );
        assert_eq!(
            Location::beside(Path::new("x.pipe")),
            Location::Directory(PathBuf::from("./.pipe"))
        );
    }

    #[test]
    fn an_unreachable_postgres_location_fails_without_printing_its_password() {
        let secret = "postgres://ci:hunter2@127.0.0.1:1/pipe?connect_timeout=2";
        let error = Location::parse(secret)
            .open_with_local(Path::new(".pipe"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("ci@127.0.0.1:1/pipe"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
