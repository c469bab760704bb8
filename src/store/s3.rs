//! The artifact store on S3 (`s3://BUCKET/PREFIX`, any S3-compatible server): each object is
//! written once, create-if-absent, under its digest beside its metadata record, and fetched into
//! the agent-local cache, where it is re-hashed before anything uses it.
//!
//! The [`Artifacts`] trait is synchronous and is called from the runner's tokio threads, so the
//! S3 client runs on its own runtime on a dedicated thread; callers wait on a channel, never
//! `block_on` inside their own runtime.

use super::Artifacts;
use crate::run::artifact::{
    ArtifactKind, ArtifactRecord, ArtifactStore, Mismatch, Provenance, Stored, VerifyError,
    hash_path, hex_part, verify_path,
};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use std::fmt;
use std::fs;
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long one S3 request may take before the operation fails with a message: a CI job must
/// not hang on an unreachable server.
const CONNECT_TIMEOUT: &str = "5s";
const REQUEST_TIMEOUT: &str = "120s";

/// `s3://BUCKET/PREFIX` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing slashes; may be empty.
    pub prefix: String,
}

impl S3Url {
    /// `None` unless `text` is `s3://BUCKET[/PREFIX]` with a bucket name.
    pub fn parse(text: &str) -> Option<S3Url> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return None;
        }
        Some(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Artifacts kept in an S3 bucket, with the agent-local read-only copies in `cache`.
#[derive(Debug)]
pub struct S3Artifacts {
    url: S3Url,
    client: Remote,
    /// The local copies, laid out like the directory store (`HEX`, `HEX.json`).
    cache: ArtifactStore,
}

impl S3Artifacts {
    /// Connects lazily: credentials, region and endpoint come from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …);
    /// plain http is allowed for a loopback endpoint (or with `AWS_ALLOW_HTTP=true`).
    pub fn open(url: &S3Url, cache: &Path) -> io::Result<S3Artifacts> {
        S3Artifacts::open_with_env(url, cache, std::env::vars())
    }

    /// [`S3Artifacts::open`] reading the `AWS_*` settings from `vars` instead of the process
    /// environment (a test cannot change its own environment safely).
    pub fn open_with_env(
        url: &S3Url,
        cache: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> io::Result<S3Artifacts> {
        let mut builder = AmazonS3Builder::new();
        for (key, value) in vars {
            let setting = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>();
            if let (true, Ok(setting)) = (key.starts_with("AWS_"), setting) {
                builder = builder.with_config(setting, value);
            }
        }
        builder = builder
            .with_bucket_name(&url.bucket)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                CONNECT_TIMEOUT,
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                REQUEST_TIMEOUT,
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
            });
        if builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|endpoint| is_loopback_http(&endpoint))
        {
            builder = builder.with_allow_http(true);
        }
        if builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder.build().map_err(|e| {
            io::Error::other(format!("cannot configure the artifact store {url}: {e}"))
        })?;
        Ok(S3Artifacts {
            url: url.clone(),
            client: Remote::start(Arc::new(store))?,
            cache: ArtifactStore::new(cache),
        })
    }

    /// Where the object of `digest` lives in the bucket (`PREFIX/sha256/HEX`), and its record.
    fn object_path(&self, digest: &str, suffix: &str) -> ObjectPath {
        let hex = hex_part(digest);
        let key = if self.url.prefix.is_empty() {
            format!("sha256/{hex}{suffix}")
        } else {
            format!("{}/sha256/{hex}{suffix}", self.url.prefix)
        };
        ObjectPath::from(key)
    }

    /// `s3://BUCKET/KEY` of an object, for messages.
    fn object_url(&self, path: &ObjectPath) -> String {
        format!("s3://{}/{path}", self.url.bucket)
    }

    /// Writes `bytes` unless an object is already there: the first write of a digest wins and
    /// is never replaced (a later identical build has nothing to add).
    fn put_if_absent(&self, path: ObjectPath, bytes: Vec<u8>) -> io::Result<()> {
        let url = self.object_url(&path);
        let store = self.client.store.clone();
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let written = self.client.call(async move {
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
        })?;
        match written {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(error) => Err(io::Error::other(format!(
                "cannot upload {url} to the artifact store: {error}"
            ))),
        }
    }

    /// The bytes of an object; `None` when the bucket has no such object.
    fn get(&self, path: ObjectPath) -> io::Result<Option<Vec<u8>>> {
        let url = self.object_url(&path);
        let store = self.client.store.clone();
        let fetched = self.client.call(async move {
            match store.get(&path).await {
                Ok(result) => result.bytes().await.map(|bytes| Some(bytes.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(error) => Err(error),
            }
        })?;
        fetched.map_err(|error| {
            io::Error::other(format!(
                "cannot fetch {url} from the artifact store: {error}"
            ))
        })
    }

    /// The names (below `prefix`, without it) of every object under `prefix`.
    fn keys_under(&self, prefix: ObjectPath) -> io::Result<std::collections::BTreeSet<String>> {
        let url = self.object_url(&prefix);
        let store = self.client.store.clone();
        let listed = self
            .client
            .call(async move { store.list_with_delimiter(Some(&prefix)).await })?;
        let names = listed.map(|listing| {
            listing
                .objects
                .iter()
                .filter_map(|meta| meta.location.filename().map(str::to_string))
                .collect()
        });
        names.map_err(|error| {
            io::Error::other(format!("cannot list {url} in the artifact store: {error}"))
        })
    }

    fn fetch_record(&self, digest: &str) -> io::Result<Option<ArtifactRecord>> {
        let Some(bytes) = self.get(self.object_path(digest, ".json"))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Downloads the object of `digest` into a staging directory of the cache, unpacks a
    /// directory, re-hashes it, and only then files it under the digest.
    fn fetch_into_cache(&self, digest: &str) -> Result<PathBuf, VerifyError> {
        let object = self.object_path(digest, "");
        let url = self.object_url(&object);
        let mismatch = |found: String| {
            VerifyError::Mismatch(Mismatch {
                expected: format!("sha256:{}", hex_part(digest)),
                found,
                path: PathBuf::from(&url),
            })
        };
        let record = self.fetch_record(digest).map_err(VerifyError::Io)?;
        let Some(bytes) = self.get(object.clone()).map_err(VerifyError::Io)? else {
            return Err(mismatch("nothing".into()));
        };
        let target = self.cache.stored_path(digest);
        let root = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(root).map_err(VerifyError::Io)?;
        let staging = tempfile::Builder::new()
            .prefix(".fetching-")
            .tempdir_in(root)
            .map_err(VerifyError::Io)?;
        let copy = staging.path().join("copy");
        let is_dir = record.as_ref().map(|r| r.kind) == Some(ArtifactKind::Directory);
        unpack(&bytes, &copy, is_dir).map_err(VerifyError::Io)?;
        let (hex, _) = hash_path(&copy).map_err(VerifyError::Io)?;
        if hex != hex_part(digest) {
            return Err(mismatch(format!("sha256:{hex}")));
        }
        replace_cached(&copy, &target, digest).map_err(VerifyError::Io)?;
        if let Some(record) = record {
            let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other);
            let written = json.and_then(|json| {
                crate::fsutil::write_atomic(&root.join(format!("{hex}.json")), &json)
            });
            written.map_err(VerifyError::Io)?;
        }
        Ok(target)
    }
}

impl Artifacts for S3Artifacts {
    /// Stores the local copy first (its digest comes from the read that copied it), then
    /// uploads it and its record, each create-if-absent.
    fn put(
        &self,
        name: &str,
        source: &Path,
        provenance: &Provenance,
        workspace: Option<&Path>,
    ) -> io::Result<Stored> {
        let stored = self.cache.store(name, source, provenance, workspace)?;
        let digest = &stored.record.digest;
        let local = self.cache.stored_path(digest);
        let bytes = match stored.record.kind {
            ArtifactKind::File => fs::read(&local)?,
            ArtifactKind::Directory => pack(&local)?,
        };
        self.put_if_absent(self.object_path(digest, ""), bytes)?;
        let record = serde_json::to_vec_pretty(&stored.record).map_err(io::Error::other)?;
        self.put_if_absent(self.object_path(digest, ".json"), record)?;
        Ok(stored)
    }

    /// The bucket's record (the first build's), else the local cache's when S3 cannot answer.
    fn lookup(&self, digest: &str) -> Option<ArtifactRecord> {
        match self.fetch_record(digest) {
            Ok(Some(record)) => Some(record),
            Ok(None) | Err(_) => self.cache.lookup(digest),
        }
    }

    fn local_path(&self, digest: &str) -> PathBuf {
        self.cache.stored_path(digest)
    }

    /// The cached copy when it still verifies; otherwise a fresh download, re-hashed before it
    /// replaces whatever the cache held.
    fn materialise(&self, digest: &str) -> Result<PathBuf, VerifyError> {
        match self.cache.verify(digest) {
            Ok(path) => Ok(path),
            Err(_) => self.fetch_into_cache(digest),
        }
    }

    /// Every digest whose object and record are both in the bucket: an object without its
    /// record is a put that has not finished, and is not listed.
    fn list(&self) -> io::Result<Vec<String>> {
        let keys = self.keys_under(self.object_path("", ""))?;
        let mut digests: Vec<String> = keys
            .iter()
            .filter_map(|key| key.strip_suffix(".json"))
            .filter(|hex| keys.contains(*hex))
            .map(|hex| format!("sha256:{hex}"))
            .collect();
        digests.sort();
        Ok(digests)
    }

    /// Deletes the object, then its record (so a half-done removal is never listed), and the
    /// agent-local cached copy.
    fn remove(&self, digest: &str) -> io::Result<()> {
        for suffix in ["", ".json"] {
            let path = self.object_path(digest, suffix);
            let url = self.object_url(&path);
            let store = self.client.store.clone();
            let deleted = self.client.call(async move { store.delete(&path).await })?;
            match deleted {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    return Err(io::Error::other(format!(
                        "cannot remove {url} from the artifact store: {error}"
                    )));
                }
            }
        }
        self.cache.remove_object(digest)
    }
}

fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    ["127.", "localhost", "[::1]"]
        .iter()
        .any(|host| rest.starts_with(host))
}

/// A directory object is a tar of the read-only copy: modes travel with it, and the digest
/// (over the unpacked tree) does not depend on the archive's bytes.
fn pack(dir: &Path) -> io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    archive.mode(tar::HeaderMode::Complete);
    archive.append_dir_all(".", dir)?;
    archive.into_inner()
}

fn unpack(bytes: &[u8], target: &Path, is_dir: bool) -> io::Result<()> {
    if is_dir {
        fs::create_dir(target)?;
        let mut archive = tar::Archive::new(bytes);
        archive.set_preserve_permissions(true);
        return archive.unpack(target);
    }
    fs::write(target, bytes)?;
    let mode = fs::metadata(target)?.permissions().mode() & 0o111;
    fs::set_permissions(target, fs::Permissions::from_mode(0o444 | mode))
}

/// Files a verified download under its digest, removing a stale or corrupt cached copy first.
/// A valid copy another process filed meanwhile is kept: a step may be reading it.
fn replace_cached(copy: &Path, target: &Path, digest: &str) -> io::Result<()> {
    if verify_path(target, digest).is_ok() {
        return Ok(());
    }
    match fs::symlink_metadata(target) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(target)?,
        Ok(_) => fs::remove_file(target)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(copy, target)
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The S3 client and the runtime it runs on: a dedicated thread owns the runtime and ends
/// (dropping it there) when the last handle goes.
struct Remote {
    store: Arc<dyn ObjectStore>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({})", self.store)
    }
}

impl Remote {
    fn start(store: Arc<dyn ObjectStore>) -> io::Result<Remote> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pipe-s3")
            .enable_all()
            .build()?;
        let (jobs, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("pipe-s3-runtime".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = incoming.recv().await {
                        tokio::spawn(job);
                    }
                });
            })?;
        Ok(Remote { store, jobs })
    }

    /// Runs `future` on the S3 runtime and waits for its result on this thread.
    fn call<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> io::Result<T> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            // The caller only goes away by panicking; nothing is left to tell then.
            let _ = reply.send(future.await);
        });
        let stopped = || io::Error::other("the S3 client of the artifact store has stopped");
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_an_optional_prefix() {
        let url = S3Url::parse("s3://team-artifacts/ci/pipe/").unwrap();
        assert_eq!(url.bucket, "team-artifacts");
        assert_eq!(url.prefix, "ci/pipe");
        assert_eq!(url.to_string(), "s3://team-artifacts/ci/pipe");
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert!(S3Url::parse("s3://").is_none());
        assert!(S3Url::parse("/srv/artifacts").is_none());
    }

    #[test]
    fn plain_http_is_allowed_only_for_loopback_endpoints() {
        assert!(is_loopback_http("http://127.0.0.1:8333"));
        assert!(is_loopback_http("http://localhost:9000"));
        assert!(!is_loopback_http("http://s3.internal:9000"));
        assert!(!is_loopback_http("https://127.0.0.1"));
    }

    #[test]
    fn a_directory_survives_pack_and_unpack_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("site");
        fs::create_dir_all(tree.join("sub")).unwrap();
        fs::write(tree.join("sub/page"), b"x").unwrap();
        fs::write(tree.join("run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(tree.join("run.sh"), fs::Permissions::from_mode(0o555)).unwrap();
        let bytes = pack(&tree).unwrap();
        unpack(&bytes, &dir.path().join("copy"), true).unwrap();
        assert_eq!(
            hash_path(&tree).unwrap(),
            hash_path(&dir.path().join("copy")).unwrap()
        );
    }
}
