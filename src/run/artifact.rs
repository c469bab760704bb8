//! The content-addressed artifact store in a directory (`artifacts/sha256/` of the state, the
//! `store::Artifacts` of the directory backend): hashing (a file by its bytes, a directory by a
//! Merkle walk), read-only copies, their verification and metadata.

mod ingest;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Metadata stored beside each artifact as `HEX.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub name: String,
    /// `sha256:HEX`
    pub digest: String,
    pub size: u64,
    pub kind: ArtifactKind,
    pub git_sha: String,
    /// RFC 3339.
    pub built_at: String,
    pub version: String,
    pub run_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    File,
    Directory,
}

/// Who built an artifact, recorded in its metadata.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub git_sha: String,
    pub version: String,
    pub run_id: String,
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// The store whose objects live in `root` (the state's `artifacts/sha256`, chosen by
    /// `store`). Creates nothing until used.
    pub fn new(root: &Path) -> ArtifactStore {
        ArtifactStore {
            root: root.to_path_buf(),
        }
    }

    /// Where the immutable copy of `digest` (`sha256:HEX` or `HEX`) lives.
    pub fn stored_path(&self, digest: &str) -> PathBuf {
        self.root.join(hex_part(digest))
    }

    /// The metadata of a stored artifact, if present.
    pub fn lookup(&self, digest: &str) -> Option<ArtifactRecord> {
        let text = fs::read_to_string(self.metadata_path(digest)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn metadata_path(&self, digest: &str) -> PathBuf {
        self.root.join(format!("{}.json", hex_part(digest)))
    }

    /// Copies `source` into the store in one read (hashing what is copied), files it under
    /// its digest read-only and writes its metadata record. Symlinks are followed; with a
    /// `workspace`, everything must resolve inside it. An object already stored under the same
    /// digest is re-hashed first: a corrupt one is quarantined and replaced by the fresh copy.
    pub fn store(
        &self,
        name: &str,
        source: &Path,
        provenance: &Provenance,
        workspace: Option<&Path>,
    ) -> io::Result<Stored> {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("artifact `{name}`: {}: {e}", source.display()),
            )
        };
        fs::create_dir_all(&self.root)?;
        let staging = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempdir_in(&self.root)?;
        let copy = staging.path().join("copy");
        let copied = ingest::Walk::new(workspace)
            .and_then(|mut walk| walk.copy(source, &copy))
            .map_err(context)?;
        let digest = format!("sha256:{}", copied.hex);
        let replaced = self.file_under_digest(&copy, &digest)?;
        let record = ArtifactRecord {
            name: name.to_string(),
            digest,
            size: copied.size,
            kind: if copied.is_dir {
                ArtifactKind::Directory
            } else {
                ArtifactKind::File
            },
            git_sha: provenance.git_sha.clone(),
            built_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            version: provenance.version.clone(),
            run_id: provenance.run_id.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&self.metadata_path(&copied.hex), &json)?;
        Ok(Stored { record, replaced })
    }

    /// Renames the verified copy to the digest's name. An object already there is kept only
    /// if it still hashes to the digest; otherwise it moves to `quarantine/` (kept as evidence)
    /// and the fresh copy takes its place.
    fn file_under_digest(&self, copy: &Path, digest: &str) -> io::Result<Option<Replaced>> {
        let target = self.stored_path(digest);
        let mut replaced = None;
        if fs::symlink_metadata(&target).is_ok() {
            match verify_path(&target, digest) {
                Ok(()) => return Ok(None),
                Err(VerifyError::Mismatch(mismatch)) => {
                    let quarantine = self.quarantine(&target, digest)?;
                    replaced = Some(Replaced {
                        mismatch,
                        quarantine,
                    });
                }
                Err(VerifyError::Io(e)) => return Err(e),
            }
        }
        match fs::rename(copy, &target) {
            Ok(()) => {}
            // Another process filed the same content first: keep it if it verifies.
            Err(_) if verify_path(&target, digest).is_ok() => {}
            Err(e) => return Err(e),
        }
        crate::fsutil::sync_dir(&self.root)?;
        Ok(replaced)
    }

    fn quarantine(&self, target: &Path, digest: &str) -> io::Result<PathBuf> {
        let dir = self.root.join("quarantine");
        fs::create_dir_all(&dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.9fZ");
        let moved = dir.join(format!("{}-{stamp}", hex_part(digest)));
        fs::rename(target, &moved)?;
        Ok(moved)
    }

    /// Every stored object's digest, sorted: names of 64 hex digits (not `quarantine/`, not a
    /// half-written `.incoming-*`, not the `HEX.json` metadata).
    pub fn digests(&self) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut digests = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                digests.push(format!("sha256:{name}"));
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Removes the object of `digest` and its metadata; a stored directory's read-only
    /// subdirectories are made writable first so they can be emptied.
    pub fn remove_object(&self, digest: &str) -> io::Result<()> {
        let object = self.stored_path(digest);
        match fs::symlink_metadata(&object) {
            Ok(metadata) if metadata.is_dir() => {
                make_dirs_writable(&object)?;
                fs::remove_dir_all(&object)?;
            }
            Ok(_) => fs::remove_file(&object)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        match fs::remove_file(self.metadata_path(digest)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Re-hashes the stored object of `digest`; `Ok` is its path, proven to hold those bytes
    /// at the time of the call.
    pub fn verify(&self, digest: &str) -> Result<PathBuf, VerifyError> {
        let path = self.stored_path(digest);
        verify_path(&path, digest).map(|()| path)
    }
}

/// What `store` did besides storing: the corrupt object it found and set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub mismatch: Mismatch,
    /// Where the corrupt object now lives.
    pub quarantine: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub record: ArtifactRecord,
    pub replaced: Option<Replaced>,
}

/// A stored object whose bytes no longer hash to its digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored artifact {} changed after it was stored (expected {expected}, found {found})", path.display())]
pub struct Mismatch {
    /// `sha256:HEX`
    pub expected: String,
    /// `sha256:HEX` of what is there now, or what is wrong with it (missing, a symlink).
    pub found: String,
    pub path: PathBuf,
}

impl Mismatch {
    /// The fields of the `artifact_verification_failed` audit event.
    pub fn audit_fields(&self) -> serde_json::Value {
        serde_json::json!({
            "digest": self.expected,
            "found": self.found,
            "path": self.path.display().to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Mismatch(Mismatch),
    #[error("the stored artifact could not be read: {0}")]
    Io(io::Error),
}

/// Re-hashes `path` (streaming) and compares it with `digest`. A missing object or one that
/// became a symlink is a mismatch too: neither is the immutable copy that was stored.
pub fn verify_path(path: &Path, digest: &str) -> Result<(), VerifyError> {
    let expected = format!("sha256:{}", hex_part(digest));
    let mismatch = |found: String| {
        VerifyError::Mismatch(Mismatch {
            expected: expected.clone(),
            found,
            path: path.to_path_buf(),
        })
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(mismatch("nothing".into()));
        }
        Err(e) => return Err(VerifyError::Io(e)),
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(mismatch("a symlink".into()));
        }
        Ok(_) => {}
    }
    let (hex, _) = hash_path(path).map_err(VerifyError::Io)?;
    if hex == hex_part(digest) {
        Ok(())
    } else {
        Err(mismatch(format!("sha256:{hex}")))
    }
}

fn make_dirs_writable(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_dirs_writable(&entry.path())?;
        }
    }
    Ok(())
}

fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// SHA-256 of a path and its total size. A file hashes to the SHA-256 of its bytes (what
/// `sha256sum` prints). A directory hashes to the SHA-256 of its canonical listing: one line per
/// entry, sorted by name, `KIND MODE DIGEST NAME\n` with KIND `f` (file; MODE `x` when
/// executable, else `-`), `d` (directory, DIGEST its own tree hash) or `l` (symlink, DIGEST the
/// SHA-256 of the link target: the store no longer writes links, older stores may hold them);
/// the listing starts with `pipe-tree/v1\n`. `ingest` builds the same listing while copying.
pub fn hash_path(path: &Path) -> io::Result<(String, u64)> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.is_dir() {
        hash_directory(path)
    } else {
        hash_file(path)
    }
}

fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn hash_directory(path: &Path) -> io::Result<(String, u64)> {
    let mut entries: Vec<_> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    let mut listing = String::from("pipe-tree/v1\n");
    let mut total = 0u64;
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = fs::symlink_metadata(entry.path())?;
        let line = if metadata.file_type().is_symlink() {
            let target = fs::read_link(entry.path())?;
            let digest = hex::encode(Sha256::digest(target.as_os_str().as_encoded_bytes()));
            format!("l - {digest} {name}\n")
        } else if metadata.is_dir() {
            let (digest, size) = hash_directory(&entry.path())?;
            total += size;
            format!("d - {digest} {name}\n")
        } else {
            let (digest, size) = hash_file(&entry.path())?;
            total += size;
            let mode = if metadata.permissions().mode() & 0o111 != 0 {
                "x"
            } else {
                "-"
            };
            format!("f {mode} {digest} {name}\n")
        };
        listing.push_str(&line);
    }
    Ok((hex::encode(Sha256::digest(listing.as_bytes())), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_a_file_read_only_under_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("app.bin");
        fs::write(&source, b"hello").unwrap();
        let store = ArtifactStore::new(&dir.path().join(".pipe/artifacts/sha256"));
        let record = store
            .store("app", &source, &Provenance::default(), None)
            .unwrap()
            .record;
        let expected = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(record.digest, format!("sha256:{expected}"));
        assert_eq!(record.size, 5);
        let stored = store.stored_path(&record.digest);
        assert_eq!(fs::read(&stored).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(store.lookup(expected).unwrap().name, "app");
    }

    #[test]
    fn directory_digest_depends_on_names_and_contents_only() {
        let dir = tempfile::tempdir().unwrap();
        for (tree, content) in [("a", "x"), ("b", "x"), ("c", "y")] {
            fs::create_dir_all(dir.path().join(tree).join("sub")).unwrap();
            fs::write(dir.path().join(tree).join("sub/file"), content).unwrap();
        }
        let digest = |tree: &str| hash_path(&dir.path().join(tree)).unwrap().0;
        assert_eq!(digest("a"), digest("b"));
        assert_ne!(digest("a"), digest("c"));
        let store = ArtifactStore::new(&dir.path().join(".pipe/artifacts/sha256"));
        let record = store
            .store("site", &dir.path().join("a"), &Provenance::default(), None)
            .unwrap()
            .record;
        assert_eq!(record.kind, ArtifactKind::Directory);
        let copy = store.stored_path(&record.digest).join("sub/file");
        assert_eq!(fs::read_to_string(copy).unwrap(), "x");
    }

    fn store_in(dir: &Path) -> ArtifactStore {
        ArtifactStore::new(&dir.join(".pipe/artifacts/sha256"))
    }

    fn overwrite(path: &Path, bytes: &[u8]) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn verify_detects_a_stored_object_changed_after_storage() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app"), b"v1").unwrap();
        let store = store_in(dir.path());
        let digest = store
            .store("app", &dir.path().join("app"), &Provenance::default(), None)
            .unwrap()
            .record
            .digest;
        assert!(store.verify(&digest).is_ok());
        overwrite(&store.stored_path(&digest), b"evil");
        let Err(VerifyError::Mismatch(mismatch)) = store.verify(&digest) else {
            panic!("a changed object must not verify");
        };
        assert_eq!(mismatch.expected, digest);
        assert_eq!(
            mismatch.found,
            format!("sha256:{}", hash_path(&mismatch.path).unwrap().0)
        );
        assert!(mismatch.to_string().contains(&format!("expected {digest}")));
    }

    #[test]
    fn storing_the_same_digest_over_a_corrupt_object_quarantines_it_and_stores_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("app");
        fs::write(&source, b"v1").unwrap();
        let store = store_in(dir.path());
        let first = store
            .store("app", &source, &Provenance::default(), None)
            .unwrap();
        assert!(first.replaced.is_none());
        let stored = store.stored_path(&first.record.digest);
        overwrite(&stored, b"evil");
        let again = store
            .store("app", &source, &Provenance::default(), None)
            .unwrap();
        let replaced = again.replaced.expect("the corrupt object is reported");
        assert_eq!(fs::read(&replaced.quarantine).unwrap(), b"evil");
        assert_eq!(fs::read(&stored).unwrap(), b"v1");
        assert!(store.verify(&again.record.digest).is_ok());
        let intact = store
            .store("app", &source, &Provenance::default(), None)
            .unwrap();
        assert!(intact.replaced.is_none(), "an intact object is kept");
    }

    #[test]
    fn a_symlinked_artifact_is_stored_as_its_target_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("build/site")).unwrap();
        fs::write(root.join("build/real.bin"), b"v1").unwrap();
        fs::write(root.join("build/page.html"), b"page v1").unwrap();
        std::os::unix::fs::symlink("real.bin", root.join("build/app")).unwrap();
        std::os::unix::fs::symlink("../page.html", root.join("build/site/index.html")).unwrap();
        let store = store_in(root);
        let file = store
            .store(
                "app",
                &root.join("build/app"),
                &Provenance::default(),
                Some(root),
            )
            .unwrap()
            .record;
        let site = store
            .store(
                "site",
                &root.join("build/site"),
                &Provenance::default(),
                Some(root),
            )
            .unwrap()
            .record;
        fs::write(root.join("build/real.bin"), b"v2").unwrap();
        fs::write(root.join("build/page.html"), b"page v2").unwrap();
        let stored_file = store.stored_path(&file.digest);
        assert!(
            !fs::symlink_metadata(&stored_file)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&stored_file).unwrap(), b"v1");
        let stored_page = store.stored_path(&site.digest).join("index.html");
        assert!(
            !fs::symlink_metadata(&stored_page)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&stored_page).unwrap(), b"page v1");
        assert!(store.verify(&file.digest).is_ok() && store.verify(&site.digest).is_ok());
    }

    #[test]
    fn symlinks_leaving_the_workspace_dangling_or_looping_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        link(&outside.path().join("secret"), "escape");
        link(Path::new("missing"), "dangling");
        fs::create_dir(root.join("tree")).unwrap();
        std::os::unix::fs::symlink(".", root.join("tree/again")).unwrap();
        let store = store_in(root);
        let store_it = |name: &str, workspace: Option<&Path>| {
            store.store(name, &root.join(name), &Provenance::default(), workspace)
        };
        let escape = store_it("escape", Some(root)).unwrap_err();
        assert!(
            escape.to_string().contains("outside the workspace"),
            "{escape}"
        );
        assert!(store_it("escape", None).is_ok(), "allowed with the opt-in");
        assert!(store_it("dangling", Some(root)).is_err());
        assert!(store_it("dangling", None).is_err());
        let looped = store_it("tree", None).unwrap_err();
        assert!(looped.to_string().contains("loops back"), "{looped}");
    }

    #[test]
    fn the_digest_always_describes_the_stored_bytes_while_the_source_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("app.bin");
        fs::write(&source, vec![b'a'; 64 * 1024]).unwrap();
        let store = store_in(dir.path());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (source, stop) = (source.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 0u8;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    round = round.wrapping_add(1);
                    // Truncate, then write in pieces: readers see empty and partial files too.
                    let mut file = fs::File::create(&source).unwrap();
                    for _ in 0..16 {
                        io::Write::write_all(&mut file, &[round; 4096]).unwrap();
                    }
                }
            })
        };
        for _ in 0..100 {
            let record = store
                .store("app", &source, &Provenance::default(), None)
                .unwrap()
                .record;
            let stored = store.stored_path(&record.digest);
            let (hex, size) = hash_path(&stored).unwrap();
            assert_eq!(format!("sha256:{hex}"), record.digest);
            assert_eq!(size, record.size);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }
}
