//! One document checked: the compilation (diagnostics, every loaded source), the entry file's
//! syntax tree, and its names. Built on every change; the server keeps the last good one.

use super::symbols::{Imported, Symbols};
use crate::compilation::{Compilation, FileLoader, compile_source};
use crate::diagnostics::{Diagnostic, FileId, SourceMap};
use crate::syntax::ast::{Import, Module};

pub struct Analysis {
    pub sources: SourceMap,
    pub module: Module,
    pub symbols: Symbols,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    /// Checks `text` as the file `path` (imports resolve beside it).
    pub fn new(path: &str, text: &str) -> Analysis {
        let Compilation {
            sources,
            diagnostics,
            ..
        } = compile_source(path, text, &FileLoader);
        let (module, _) = crate::syntax::parse(0, text);
        let parsed: Vec<(FileId, Module, &Import)> = module
            .imports
            .iter()
            .filter_map(|import| {
                let file = loaded_file(&sources, &import.path)?;
                let (imported, _) = crate::syntax::parse(file, sources.text(file));
                Some((file, imported, import))
            })
            .collect();
        let imported: Vec<Imported> = parsed
            .iter()
            .map(|(file, imported, import)| Imported {
                module: imported,
                resolved: sources.name(*file).to_string(),
                file: *file,
                alias: import.alias.as_ref().map(|a| a.name.clone()),
                path_span: import.path_span,
            })
            .collect();
        let symbols = Symbols::collect(&module, &sources, &imported);
        Analysis {
            sources,
            module,
            symbols,
            diagnostics,
        }
    }

    /// The file does not parse: only the syntax error is known about it now.
    pub fn is_broken(&self) -> bool {
        self.diagnostics.iter().any(is_syntax_error)
    }

    pub fn text(&self) -> &str {
        self.sources.text(0)
    }
}

pub fn is_syntax_error(diagnostic: &Diagnostic) -> bool {
    diagnostic.code == "E0001" && diagnostic.main_span().is_some_and(|s| s.file == 0)
}

/// The file an import path loaded as: `std/rust` by name, a relative path by its tail.
fn loaded_file(sources: &SourceMap, path: &str) -> Option<FileId> {
    let tail = format!("/{}", path.trim_start_matches("./"));
    sources
        .files()
        .skip(1)
        .find(|(_, file)| file.name == path || file.name.ends_with(&tail))
        .map(|(id, _)| id)
}
