//! Location: where a command's state lives, as given by `--state URL`, `--state-dir DIR` or
//! the default `.pipe` beside the pipeline file, and the one place a [`Store`] is built from it;
//! [`ArtifactLocation`] does the same for `--artifacts`.

use super::pg::PgStore;
use super::s3::{S3Artifacts, S3Url};
use super::{Store, StoreError};
use crate::run::artifact::ArtifactStore;
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

/// Where artifacts live when `--artifacts` / `PIPE_ARTIFACTS` says: a directory (a shared
/// mount works; it holds `sha256/HEX`) or an S3 bucket and prefix. Without either, the
/// state's own `artifacts/` keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    Directory(PathBuf),
    S3(S3Url),
}

impl ArtifactLocation {
    /// An `s3://` URL must name a bucket; anything else is a directory path.
    pub fn parse(text: &str) -> Result<ArtifactLocation, StoreError> {
        if !text.starts_with("s3://") {
            return Ok(ArtifactLocation::Directory(PathBuf::from(text)));
        }
        S3Url::parse(text).map(ArtifactLocation::S3).ok_or_else(|| {
            StoreError::Refused(format!(
                "`{text}` names no bucket: the artifact store URL is s3://BUCKET/PREFIX"
            ))
        })
    }

    /// `store` with its artifacts here; an S3 store caches its local copies in the store's
    /// agent-local directory.
    pub fn apply(&self, store: Store) -> Result<Store, StoreError> {
        match self {
            ArtifactLocation::Directory(dir) => {
                let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                Ok(store.with_artifacts(Arc::new(ArtifactStore::new(&absolute.join("sha256")))))
            }
            ArtifactLocation::S3(url) => {
                let cache = store
                    .local_dir()
                    .join("artifacts")
                    .join("cache")
                    .join("sha256");
                let remote = S3Artifacts::open(url, &cache)
                    .map_err(|e| StoreError::Refused(e.to_string()))?;
                Ok(store.with_artifacts(Arc::new(remote)))
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

    #[test]
    fn artifact_urls_select_s3_and_a_bucketless_url_is_refused() {
        assert_eq!(
            ArtifactLocation::parse("/mnt/shared/artifacts").unwrap(),
            ArtifactLocation::Directory(PathBuf::from("/mnt/shared/artifacts"))
        );
        let Ok(ArtifactLocation::S3(url)) = ArtifactLocation::parse("s3://bucket/team") else {
            panic!("an s3 URL selects S3");
        };
        assert_eq!(
            (url.bucket.as_str(), url.prefix.as_str()),
            ("bucket", "team")
        );
        let error = ArtifactLocation::parse("s3:///x").unwrap_err().to_string();
        assert!(error.contains("names no bucket"), "{error}");
    }
}
