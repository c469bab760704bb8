//! The directory backend (`.pipe/`): every state path is built here and nowhere else.
//! Layout: `runs/RUN/{run.json,plan.json,state.json,delivery/ENV.json,nodes/NODE.json,
//! approvals/ENV/APPROVER.json}`, `ledger/PIPELINE/ENV.json`, `locks/`, `audit.jsonl`; every
//! rewritten file is replaced atomically, every created-once file is linked into place.

use super::fs_lock;
use super::{
    ApprovalRecord, Artifacts, Lease, LedgerDoc, LockError, LockHolder, LockRequest, RunCreated,
    RunDoc, RunHeader, StateStore, StoreError,
};
use crate::audit::{AUDIT_FILE, AuditFile, AuditSink};
use crate::fsutil::write_atomic;
use crate::run::artifact::{ArtifactRecord, ArtifactStore, Provenance, Stored, VerifyError};
use std::collections::{BTreeMap, BTreeSet};
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

    fn run_dir(&self, run: &str) -> PathBuf {
        self.dir.join("runs").join(run)
    }

    fn header_path(&self, run: &str) -> PathBuf {
        self.run_dir(run).join("run.json")
    }

    fn approvals_dir(&self, run: &str, environment: &str) -> PathBuf {
        self.run_dir(run)
            .join("approvals")
            .join(file_stem_of(environment))
    }
}

/// A name as a file stem that decodes back to it: safe characters stay, every other byte is
/// `%XX` (`test[linux]` → `test%5Blinux%5D`), so two names never share a file.
fn file_stem_of(name: &str) -> String {
    let mut stem = String::new();
    for (index, byte) in name.bytes().enumerate() {
        let safe = byte.is_ascii_alphanumeric()
            || matches!(byte, b'_' | b'-')
            || (byte == b'.' && index > 0);
        if safe {
            stem.push(char::from(byte));
        } else {
            stem.push_str(&format!("%{byte:02X}"));
        }
    }
    stem
}

/// The name [`file_stem_of`] encoded; `None` for a file it did not write.
fn name_of_stem(stem: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let mut rest = stem.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Writes `bytes` to `path` only if nothing is there, whole or not at all: a temp file is
/// completed first and then hard-linked into place (the link fails if the name exists).
/// `Ok(false)`: the file existed.
fn create_once(path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let io_error = |e: io::Error| StoreError::io("create", path.display(), e);
    std::fs::create_dir_all(parent).map_err(io_error)?;
    let temp = tempfile::NamedTempFile::new_in(parent).map_err(io_error)?;
    std::fs::write(temp.path(), bytes).map_err(io_error)?;
    temp.as_file().sync_all().map_err(io_error)?;
    match std::fs::hard_link(temp.path(), path) {
        Ok(()) => {
            crate::fsutil::sync_dir(parent).map_err(io_error)?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(io_error(error)),
    }
}

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The approval files of one directory (`*.json`), parsed.
fn approval_files(dir: &Path) -> Result<BTreeMap<String, ApprovalRecord>, StoreError> {
    let mut found = BTreeMap::new();
    for name in entry_names(dir)? {
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let path = dir.join(&name);
        if let Some(bytes) = read_optional(&path)? {
            found.insert(stem.to_string(), from_json(&bytes, &path)?);
        }
    }
    Ok(found)
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

    fn create_run(&self, run: &str, header: &RunHeader) -> Result<RunCreated, StoreError> {
        let path = self.header_path(run);
        if create_once(&path, &to_json(header, "the run header")?)? {
            return Ok(RunCreated::Created);
        }
        match self.read_run_header(run)? {
            Some(existing) => Ok(RunCreated::Exists(existing)),
            None => Err(StoreError::Invalid {
                what: path.display().to_string(),
                reason: "exists but cannot be read back".to_string(),
            }),
        }
    }

    fn read_run_header(&self, run: &str) -> Result<Option<RunHeader>, StoreError> {
        let path = self.header_path(run);
        read_optional(&path)?
            .map(|bytes| from_json(&bytes, &path))
            .transpose()
    }

    fn write_node(&self, run: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self
            .run_dir(run)
            .join("nodes")
            .join(format!("{}.json", file_stem_of(node)));
        write_atomic(&path, bytes).map_err(|e| StoreError::io("write", path.display(), e))
    }

    fn read_nodes(&self, run: &str) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
        let dir = self.run_dir(run).join("nodes");
        let mut nodes = BTreeMap::new();
        for name in entry_names(&dir)? {
            let Some(node) = name.strip_suffix(".json").and_then(name_of_stem) else {
                continue;
            };
            if let Some(bytes) = read_optional(&dir.join(&name))? {
                nodes.insert(node, bytes);
            }
        }
        Ok(nodes)
    }

    fn record_approval(
        &self,
        run: &str,
        environment: &str,
        approval: &ApprovalRecord,
    ) -> Result<(), StoreError> {
        let dir = self.approvals_dir(run, environment);
        let file = format!("{}.json", file_stem_of(&approval.approver));
        let already = dir.join("consumed").join(&file).exists();
        if already || !create_once(&dir.join(&file), &to_json(approval, "the approval")?)? {
            return Err(StoreError::Refused(format!(
                "{} has already approved {environment} in run {run}; the quorum needs distinct \
                 approvers",
                approval.approver
            )));
        }
        Ok(())
    }

    fn approvals(&self, run: &str, environment: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let dir = self.approvals_dir(run, environment);
        let mut all = approval_files(&dir)?;
        // A consumed copy wins over a pending file a crashed consumer left behind.
        all.extend(approval_files(&dir.join("consumed"))?);
        let mut approvals: Vec<ApprovalRecord> = all.into_values().collect();
        approvals.sort_by(|a, b| (&a.at, &a.approver).cmp(&(&b.at, &b.approver)));
        Ok(approvals)
    }

    fn consume_approvals(
        &self,
        run: &str,
        environment: &str,
        by: &str,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let dir = self.approvals_dir(run, environment);
        let mut claimed = Vec::new();
        for (stem, mut approval) in approval_files(&dir)? {
            let pending = dir.join(format!("{stem}.json"));
            let consumed = dir.join("consumed").join(format!("{stem}.json"));
            approval.consumed_by = Some(by.to_string());
            // Creating the consumed copy is the claim: of two consumers, one link succeeds.
            if create_once(&consumed, &to_json(&approval, "the approval")?)? {
                claimed.push(approval);
            }
            match std::fs::remove_file(&pending) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io("remove", pending.display(), error)),
            }
        }
        claimed.sort_by(|a, b| (&a.at, &a.approver).cmp(&(&b.at, &b.approver)));
        Ok(claimed)
    }

    fn remove_run(&self, run: &str) -> Result<(), StoreError> {
        let dir = self.run_dir(run);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StoreError::io("remove", dir.display(), error)),
        }
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

    fn list(&self) -> io::Result<Vec<String>> {
        self.digests()
    }

    fn remove(&self, digest: &str) -> io::Result<()> {
        self.remove_object(digest)
    }
}
