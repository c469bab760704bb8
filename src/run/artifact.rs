//! The content-addressed artifact store under `.pipe/artifacts/sha256/`: hashing (a file by its
//! bytes, a directory by a Merkle walk), read-only immutable copies and their metadata records.

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
    /// The store of a state directory (`STATE/artifacts/sha256`). Creates nothing until used.
    pub fn new(state_dir: &Path) -> ArtifactStore {
        ArtifactStore {
            root: state_dir.join("artifacts").join("sha256"),
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

    /// Hashes `source`, copies it into the store (once per digest), makes the copy read-only and
    /// writes its metadata record.
    pub fn store(
        &self,
        name: &str,
        source: &Path,
        provenance: &Provenance,
    ) -> io::Result<ArtifactRecord> {
        let metadata = fs::metadata(source).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("artifact `{name}`: {}: {e}", source.display()),
            )
        })?;
        let kind = if metadata.is_dir() {
            ArtifactKind::Directory
        } else {
            ArtifactKind::File
        };
        let (hex, size) = hash_path(source)?;
        let digest = format!("sha256:{hex}");
        let target = self.root.join(&hex);
        if !target.exists() {
            self.copy_in(source, &target)?;
        }
        let record = ArtifactRecord {
            name: name.to_string(),
            digest,
            size,
            kind,
            git_sha: provenance.git_sha.clone(),
            built_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            version: provenance.version.clone(),
            run_id: provenance.run_id.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&self.metadata_path(&hex), &json)?;
        Ok(record)
    }

    /// Copies into a temporary sibling and renames, so a crash never leaves a half copy under
    /// the digest's name.
    fn copy_in(&self, source: &Path, target: &Path) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let staging = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempdir_in(&self.root)?;
        let copy = staging.path().join("copy");
        copy_tree(source, &copy)?;
        make_read_only(&copy)?;
        match fs::rename(&copy, target) {
            Ok(()) => {}
            // Another process stored the same content first: same bytes, nothing to do.
            Err(_) if target.exists() => {}
            Err(e) => return Err(e),
        }
        crate::fsutil::sync_dir(&self.root)
    }
}

fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// SHA-256 of a path and its total size. A file hashes to the SHA-256 of its bytes (what
/// `sha256sum` prints). A directory hashes to the SHA-256 of its canonical listing: one line per
/// entry, sorted by name, `KIND MODE DIGEST NAME\n` with KIND `f` (file; MODE `x` when
/// executable, else `-`), `d` (directory, DIGEST its own tree hash) or `l` (symlink, DIGEST the
/// SHA-256 of the link target); the listing starts with `pipe-tree/v1\n`.
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

fn copy_tree(source: &Path, target: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(source)?;
    if metadata.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(source)?, target)
    } else if metadata.is_dir() {
        fs::create_dir(target)?;
        for entry in fs::read_dir(source)? {
            let entry = entry?;
            copy_tree(&entry.path(), &target.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(source, target).map(|_| ())
    }
}

/// Files become 0444 (0555 when executable). Directories stay writable by their owner so that
/// `rm -rf .pipe` keeps working; the content addressing makes any tampering detectable.
fn make_read_only(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            make_read_only(&entry?.path())?;
        }
        return Ok(());
    }
    let executable = metadata.permissions().mode() & 0o111 != 0;
    let mode = if executable { 0o555 } else { 0o444 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_a_file_read_only_under_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("app.bin");
        fs::write(&source, b"hello").unwrap();
        let store = ArtifactStore::new(&dir.path().join(".pipe"));
        let record = store.store("app", &source, &Provenance::default()).unwrap();
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
        let store = ArtifactStore::new(&dir.path().join(".pipe"));
        let record = store
            .store("site", &dir.path().join("a"), &Provenance::default())
            .unwrap();
        assert_eq!(record.kind, ArtifactKind::Directory);
        let copy = store.stored_path(&record.digest).join("sub/file");
        assert_eq!(fs::read_to_string(copy).unwrap(), "x");
    }
}
