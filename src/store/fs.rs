//! The directory backend (`.pipe/`): every state path is built here and nowhere else.
//! Layout: `runs/RUN/{plan.json,state.json,delivery/ENV.json}`, `ledger/PIPELINE/ENV.json`,
//! `locks/`, `audit.jsonl`; every rewritten file is replaced atomically.

use super::fs_lock;
use super::{
    Artifacts, Lease, LedgerDoc, LockError, LockHolder, LockRequest, RunDoc, StateStore, StoreError,
};
use crate::audit::{AUDIT_FILE, AuditFile, AuditSink};
use crate::fsutil::write_atomic;
use crate::run::artifact::{ArtifactRecord, ArtifactStore, Provenance, Stored, VerifyError};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
pub struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    pub fn new(dir: &Path) -> FsStore {
        FsStore {
            dir: dir.to_path_buf(),
        }
    }

    fn run_doc_path(&self, run: &str, doc: &RunDoc) -> PathBuf {
        let run_dir = self.dir.join("runs").join(run);
        match doc {
            RunDoc::Plan => run_dir.join("plan.json"),
            RunDoc::State => run_dir.join("state.json"),
            RunDoc::Delivery(environment) => {
                run_dir.join("delivery").join(format!("{environment}.json"))
            }
        }
    }

    fn ledger_path(&self, pipeline: &str, environment: &str) -> PathBuf {
        self.dir
            .join("ledger")
            .join(pipeline)
            .join(format!("{environment}.json"))
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join(AUDIT_FILE)
    }
}

/// The file's bytes, `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::io("read", path.display(), error)),
    }
}

/// The names of the entries of `dir`, empty when it does not exist.
fn entry_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(StoreError::io("read", dir.display(), error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("read", dir.display(), e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

impl StateStore for FsStore {
    fn describe(&self) -> String {
        format!("the state directory {}", self.dir.display())
    }

    fn read_run_doc(&self, run: &str, doc: &RunDoc) -> Result<Option<Vec<u8>>, StoreError> {
        read_optional(&self.run_doc_path(run, doc))
    }

    fn write_run_doc(&self, run: &str, doc: &RunDoc, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.run_doc_path(run, doc);
        write_atomic(&path, bytes).map_err(|e| StoreError::io("write", path.display(), e))
    }

    fn describe_run_doc(&self, run: &str, doc: &RunDoc) -> String {
        self.run_doc_path(run, doc).display().to_string()
    }

    fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        entry_names(&self.dir.join("runs"))
    }

    fn read_ledger(
        &self,
        pipeline: &str,
        environment: &str,
    ) -> Result<Option<LedgerDoc>, StoreError> {
        let path = self.ledger_path(pipeline, environment);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                what: format!("ledger {}", path.display()),
                reason: error.to_string(),
            })
    }

    fn write_ledger(&self, lease: &Lease, doc: &LedgerDoc) -> Result<(), StoreError> {
        // The flock behind the lease is the fence here: a holder that died released it.
        if !lease.covers(&doc.pipeline, &doc.environment) {
            return Err(StoreError::StaleLease {
                environment: doc.environment.clone(),
                token: lease.token(),
            });
        }
        let path = self.ledger_path(&doc.pipeline, &doc.environment);
        let mut text = serde_json::to_string_pretty(doc)
            .map_err(|e| StoreError::io("write", path.display(), io::Error::other(e)))?;
        text.push('\n');
        write_atomic(&path, text.as_bytes()).map_err(|e| StoreError::io("write", path.display(), e))
    }

    fn ledger_environments(&self, pipeline: &str) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = entry_names(&self.dir.join("ledger").join(pipeline))?
            .into_iter()
            .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    fn referenced_digests(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut digests = BTreeSet::new();
        let root = self.dir.join("ledger");
        for pipeline in entry_names(&root)? {
            for file in entry_names(&root.join(&pipeline))? {
                let path = root.join(&pipeline).join(file);
                let bytes = read_optional(&path)?.unwrap_or_default();
                if let Ok(doc) = serde_json::from_slice::<LedgerDoc>(&bytes) {
                    digests.extend(doc.releases.into_iter().map(|r| r.digest));
                }
            }
        }
        Ok(digests)
    }

    fn lock(
        &self,
        request: &LockRequest,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Lease, LockError> {
        let held = fs_lock::acquire_unless(
            &self.dir,
            &request.pipeline,
            &request.environment,
            &request.run,
            request.timeout,
            interrupted,
        )?;
        // Later holders get larger tokens: the clock at the moment the flock was won.
        let token = chrono::Utc::now()
            .timestamp_nanos_opt()
            .map_or(0, |nanos| nanos.unsigned_abs());
        Ok(Lease::new(request, token, Box::new(held)))
    }

    fn lock_holder(&self, pipeline: &str, environment: &str) -> Option<LockHolder> {
        fs_lock::read_holder(&self.dir, pipeline, environment)
    }

    fn open_audit(&self) -> Result<Arc<dyn AuditSink>, StoreError> {
        let path = self.audit_path();
        let missing_with_releases = !path.exists() && !self.referenced_digests()?.is_empty();
        if missing_with_releases {
            return Err(StoreError::Refused(format!(
                "the audit log {} is missing, but the ledger in {} records releases; \
                 refusing to start a new chain at seq 1 (restore the log from a backup)",
                path.display(),
                self.dir.join("ledger").display()
            )));
        }
        let file = AuditFile::open(&path).map_err(StoreError::Audit)?;
        Ok(Arc::new(file))
    }

    fn read_audit(&self) -> Result<Option<Vec<u8>>, StoreError> {
        read_optional(&self.audit_path())
    }

    fn describe_audit(&self) -> String {
        self.audit_path().display().to_string()
    }

    fn write_evidence(&self, kind: &str, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let path = self
            .dir
            .join("evidence")
            .join(kind)
            .join(format!("{name}.json"));
        write_atomic(&path, bytes).map_err(|e| StoreError::io("write", path.display(), e))?;
        Ok(path.display().to_string())
    }
}

/// The directory artifact store (`artifacts/sha256/HEX`): its objects are already local.
impl Artifacts for ArtifactStore {
    fn put(
        &self,
        name: &str,
        source: &Path,
        provenance: &Provenance,
        workspace: Option<&Path>,
    ) -> io::Result<Stored> {
        self.store(name, source, provenance, workspace)
    }

    fn lookup(&self, digest: &str) -> Option<ArtifactRecord> {
        ArtifactStore::lookup(self, digest)
    }

    fn local_path(&self, digest: &str) -> PathBuf {
        self.stored_path(digest)
    }

    fn materialise(&self, digest: &str) -> Result<PathBuf, VerifyError> {
        self.verify(digest)
    }
}
