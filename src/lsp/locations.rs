//! Where a span is for the editor: the open document for the entry file, `file://` for an
//! imported file, and a read-only copy on disk for a bundled `std/…` module.

use super::text::{Encoding, LineIndex};
use crate::diagnostics::{FileId, SourceMap, Span};
use serde_json::{Value, json};

pub struct Locator<'a> {
    pub entry_uri: &'a str,
    pub sources: &'a SourceMap,
    pub encoding: Encoding,
}

impl Locator<'_> {
    pub fn uri(&self, file: FileId) -> String {
        if file == 0 {
            return self.entry_uri.to_string();
        }
        let name = self.sources.name(file);
        if let Some(module) = name.strip_prefix("std/") {
            return bundled_copy(module, self.sources.text(file))
                .unwrap_or_else(|| format!("pipe-std:///{name}"));
        }
        let path = std::path::absolute(name).unwrap_or_else(|_| name.into());
        format!("file://{}", path.display())
    }

    pub fn range(&self, span: Span) -> Value {
        let text = self.sources.text(span.file);
        LineIndex::new(text, self.encoding).range(span.start as usize, span.end as usize)
    }

    pub fn location(&self, span: Span) -> Value {
        json!({"uri": self.uri(span.file), "range": self.range(span)})
    }
}

/// The bundled module written once to a read-only file, so "go to definition" can open it;
/// `None` when the temporary directory is not writable.
fn bundled_copy(module: &str, text: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let version = env!("CARGO_PKG_VERSION");
    let dir = std::env::temp_dir().join(format!("pipe-lsp-std-{version}/std"));
    let path = dir.join(format!("{module}.pipe"));
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() != Some(text) {
        std::fs::create_dir_all(&dir).ok()?;
        let staging = tempfile::NamedTempFile::new_in(&dir).ok()?;
        std::fs::write(staging.path(), text).ok()?;
        let read_only = std::fs::Permissions::from_mode(0o444);
        std::fs::set_permissions(staging.path(), read_only).ok()?;
        staging.persist(&path).ok()?;
    }
    Some(format!("file://{}", path.display()))
}
