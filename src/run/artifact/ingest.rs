//! Copying a build output into the store in one read: every byte is hashed as it is written to
//! the copy, so the digest always describes the copy, whatever the source does meanwhile.

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What one read of a source produced: the digest and size of the copy, and whether it is a
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Copied {
    pub hex: String,
    pub size: u64,
    pub is_dir: bool,
}

/// Where a source may resolve to: inside `workspace` (symlinks included), or anywhere.
pub(super) struct Walk {
    workspace: Option<PathBuf>,
    /// (device, inode) of the directories being copied, to stop at a symlink loop.
    ancestors: Vec<(u64, u64)>,
    buffer: Vec<u8>,
}

impl Walk {
    /// `workspace: None` means the artifact opted out of confinement.
    pub(super) fn new(workspace: Option<&Path>) -> io::Result<Walk> {
        let workspace = match workspace {
            Some(dir) => Some(fs::canonicalize(dir)?),
            None => None,
        };
        Ok(Walk {
            workspace,
            ancestors: Vec::new(),
            buffer: vec![0u8; 256 * 1024],
        })
    }

    /// Copies `source` (following symlinks) to the new path `target`, hashing what is copied.
    /// Files become read-only; a directory's digest is the `pipe-tree/v1` listing of its copy.
    pub(super) fn copy(&mut self, source: &Path, target: &Path) -> io::Result<Copied> {
        self.confine(source)?;
        let file = open_without_blocking(source)?;
        let metadata = file.metadata()?;
        if metadata.is_dir() {
            drop(file);
            self.copy_directory(source, &metadata, target)
        } else if metadata.is_file() {
            self.copy_file(file, &metadata, target)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is neither a file nor a directory (a device, socket or pipe cannot be an artifact)",
                    source.display()
                ),
            ))
        }
    }

    /// A symlink is followed only to somewhere inside the workspace; a dangling one or a loop
    /// fails here too (canonicalize reports both).
    fn confine(&self, source: &Path) -> io::Result<()> {
        let Some(workspace) = &self.workspace else {
            return Ok(());
        };
        let resolved = fs::canonicalize(source).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{} cannot be resolved: {e}", source.display()),
            )
        })?;
        if resolved.starts_with(workspace) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves to {}, outside the workspace {} (set `outside_workspace = true` on the artifact to allow it)",
                source.display(),
                resolved.display(),
                workspace.display()
            ),
        ))
    }

    fn copy_file(
        &mut self,
        mut file: File,
        metadata: &fs::Metadata,
        target: &Path,
    ) -> io::Result<Copied> {
        let mut copy = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let read = file.read(&mut self.buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&self.buffer[..read]);
            copy.write_all(&self.buffer[..read])?;
            size += read as u64;
        }
        copy.set_permissions(fs::Permissions::from_mode(read_only_mode(metadata)))?;
        copy.sync_all()?;
        Ok(Copied {
            hex: hex::encode(hasher.finalize()),
            size,
            is_dir: false,
        })
    }

    fn copy_directory(
        &mut self,
        source: &Path,
        metadata: &fs::Metadata,
        target: &Path,
    ) -> io::Result<Copied> {
        let identity = (metadata.dev(), metadata.ino());
        if self.ancestors.contains(&identity) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} loops back to a directory that contains it",
                    source.display()
                ),
            ));
        }
        self.ancestors.push(identity);
        let listed = self.copy_entries(source, target);
        self.ancestors.pop();
        let (listing, size) = listed?;
        Ok(Copied {
            hex: hex::encode(Sha256::digest(listing.as_bytes())),
            size,
            is_dir: true,
        })
    }

    /// The `pipe-tree/v1` listing of the copy, built from what each entry's copy hashed to.
    fn copy_entries(&mut self, source: &Path, target: &Path) -> io::Result<(String, u64)> {
        fs::create_dir(target)?;
        let mut names: Vec<_> = fs::read_dir(source)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let mut listing = String::from("pipe-tree/v1\n");
        let mut total = 0u64;
        for name in names {
            let copy_path = target.join(&name);
            let copied = self.copy(&source.join(&name), &copy_path)?;
            total += copied.size;
            let label = name.to_string_lossy();
            let line = if copied.is_dir {
                format!("d - {} {label}\n", copied.hex)
            } else {
                let mode = fs::metadata(&copy_path)?.permissions().mode();
                let executable = if mode & 0o111 != 0 { "x" } else { "-" };
                format!("f {executable} {} {label}\n", copied.hex)
            };
            listing.push_str(&line);
        }
        Ok((listing, total))
    }
}

/// Opening a FIFO for reading would wait for a writer; non-blocking, it returns at once and the
/// type check refuses it.
fn open_without_blocking(source: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(source)
}

/// 0444, or 0555 when the source is executable by anyone.
fn read_only_mode(metadata: &fs::Metadata) -> u32 {
    if metadata.permissions().mode() & 0o111 != 0 {
        0o555
    } else {
        0o444
    }
}
