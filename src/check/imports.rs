//! Imports: loads `std/…` modules and files (through the [`Loader`]) recursively, reports
//! missing files and cycles (E0105), and builds the template table a file can call.

use super::Loader;
use super::elaborate;
use super::stdlib::{self, STD_PREFIX};
use super::templates::{self, TemplateTable};
use crate::diagnostics::{Diagnostic, FileId, SourceMap, Span, did_you_mean};
use crate::syntax::ast::{Import, Module};
use std::collections::HashMap;
use std::rc::Rc;

/// Loads everything `module` (the entry file `entry`) imports and returns the templates the
/// entry file can call: its own, and those of the modules it imports directly.
pub(super) fn resolve(
    sources: &mut SourceMap,
    entry: FileId,
    module: &Module,
    loader: &dyn Loader,
    diagnostics: &mut Vec<Diagnostic>,
) -> TemplateTable {
    let entry_name = sources.name(entry).to_string();
    let mut resolver = Resolver {
        sources,
        loader,
        diagnostics,
        loaded: HashMap::new(),
        chain: vec![entry_name.clone()],
    };
    check_definitions(module, resolver.sources, resolver.diagnostics);
    resolver.file_templates(&entry_name, module)
}

/// A module that loaded and parsed.
type Loaded = Option<Rc<Module>>;

struct Resolver<'a> {
    sources: &'a mut SourceMap,
    loader: &'a dyn Loader,
    diagnostics: &'a mut Vec<Diagnostic>,
    /// Every file loaded so far by resolved name (`None`: it did not parse).
    loaded: HashMap<String, Loaded>,
    /// The files being resolved, outermost first, for cycle messages.
    chain: Vec<String>,
}

impl Resolver<'_> {
    /// Resolves the imports of `module` (the file `name`) and returns its visible templates.
    fn file_templates(&mut self, name: &str, module: &Module) -> TemplateTable {
        let mut table = TemplateTable::default();
        for template in &module.templates {
            table.insert(template.name.name.clone(), template, self.diagnostics);
        }
        let mut seen_imports: HashMap<(String, Option<String>), Span> = HashMap::new();
        for import in &module.imports {
            let Some((resolved, imported)) = self.import(name, import) else {
                continue;
            };
            let alias = import.alias.as_ref().map(|alias| alias.name.clone());
            if let Some(first) = seen_imports.insert((resolved.clone(), alias.clone()), import.span)
            {
                self.diagnostics.push(
                    Diagnostic::error("E0102", format!("`{resolved}` is imported twice"))
                        .primary(import.span, "imported again here")
                        .secondary(first, "first imported here")
                        .help("remove one of the imports"),
                );
                continue;
            }
            for template in &imported.templates {
                let visible = match &alias {
                    Some(alias) => format!("{alias}.{}", template.name.name),
                    None => template.name.name.clone(),
                };
                table.insert(visible, template, self.diagnostics);
            }
        }
        table
    }

    /// Loads one import of the file `from`; `None` when it failed (already reported).
    fn import(&mut self, from: &str, import: &Import) -> Option<(String, Rc<Module>)> {
        let (resolved, text) = self.read(from, import)?;
        if let Some(position) = self.chain.iter().position(|name| *name == resolved) {
            let mut cycle: Vec<&str> = self.chain[position..].iter().map(String::as_str).collect();
            cycle.push(&resolved);
            let cycle = cycle.join(" → ");
            self.diagnostics.push(
                Diagnostic::error("E0105", format!("import cycle: {cycle}"))
                    .primary(import.path_span, "this import closes the cycle")
                    .help("move the shared templates into a file that imports neither"),
            );
            return None;
        }
        if let Some(loaded) = self.loaded.get(&resolved) {
            return loaded.clone().map(|module| (resolved, module));
        }
        let file = self.sources.add(resolved.clone(), text.clone());
        let loaded = self.parse_imported(file, &text, import);
        self.loaded.insert(resolved.clone(), loaded.clone());
        let module = loaded?;
        self.chain.push(resolved.clone());
        // Resolved for its diagnostics (missing files, cycles, clashes); its own imports' templates
        // are not re-exported to the importer.
        self.file_templates(&resolved, &module);
        self.chain.pop();
        Some((resolved, module))
    }

    /// The resolved name and text of an import: a bundled module or a file from the loader.
    fn read(&mut self, from: &str, import: &Import) -> Option<(String, String)> {
        if let Some(module_name) = import.path.strip_prefix(STD_PREFIX) {
            if let Some(text) = stdlib::module(module_name) {
                return Some((import.path.clone(), text.to_string()));
            }
            let names: Vec<String> = stdlib::modules()
                .iter()
                .map(|(name, _)| format!("{STD_PREFIX}{name}"))
                .collect();
            let help = did_you_mean(&import.path, names.iter().map(String::as_str))
                .unwrap_or_else(|| format!("the standard library has: {}", names.join(", ")));
            self.diagnostics.push(
                Diagnostic::error("E0105", format!("no standard module `{}`", import.path))
                    .primary(import.path_span, "not in the standard library")
                    .help(help),
            );
            return None;
        }
        match self.loader.load(from, &import.path) {
            Ok(loaded) => Some(loaded),
            Err(reason) => {
                self.diagnostics.push(
                    Diagnostic::error("E0105", format!("cannot import `{}`: {reason}", import.path))
                        .primary(import.path_span, "cannot be imported")
                        .help("import paths are relative to the importing file, e.g. `import \"./ci/common.pipe\"`"),
                );
                None
            }
        }
    }

    /// Parses an imported file; it may hold imports and templates only.
    fn parse_imported(&mut self, file: FileId, text: &str, import: &Import) -> Loaded {
        let (module, parse_diagnostics) = crate::syntax::parse(file, text);
        let unusable = parse_diagnostics.iter().any(|d| d.code == "E0001");
        self.diagnostics.extend(parse_diagnostics);
        if unusable {
            return None;
        }
        for pipeline in &module.pipelines {
            self.diagnostics.push(
                Diagnostic::error("E0103", "an imported file cannot hold a pipeline")
                    .primary(pipeline.name.span, "pipeline in an imported file")
                    .secondary(import.path_span, "imported here")
                    .help("imported files hold templates (and imports) only; move the pipeline into the entry file"),
            );
        }
        check_definitions(&module, self.sources, self.diagnostics);
        Some(Rc::new(module))
    }
}

/// Checks every template defined in `module` once, where it is defined: its parameters, then
/// its body as a job body.
fn check_definitions(module: &Module, sources: &SourceMap, diagnostics: &mut Vec<Diagnostic>) {
    for template in &module.templates {
        let body = templates::check_definition(template, sources, diagnostics);
        elaborate::check_template_body(&body, sources, diagnostics);
    }
}

#[cfg(test)]
mod tests {
    use crate::check::stdlib;
    use crate::check::testing::{check_source, check_with, codes, rendered};

    const USES_CARGO: &str = "pipeline p { job a = cargo(task: \"build\") }";

    #[test]
    fn a_relative_import_makes_its_templates_visible() {
        let entry = format!("import \"./ci/common.pipe\"\n{USES_CARGO}");
        let common = "template cargo(task: string) { run \"cargo ${{ task }}\" }";
        let (checked, sources) = check_with(&entry, &[("ci/common.pipe", common)]);
        assert!(
            checked.program.is_some(),
            "{}",
            rendered(&checked, &sources)
        );
        let definition = checked.program.unwrap().jobs[0]
            .template
            .clone()
            .unwrap()
            .definition;
        assert_eq!(sources.name(definition.file), "ci/common.pipe");
    }

    #[test]
    fn an_unknown_std_module_suggests_the_closest() {
        let (checked, sources) = check_source(&format!("import \"std/rsut\"\n{USES_CARGO}"));
        let text = rendered(&checked, &sources);
        assert_eq!(codes(&checked), ["E0105", "E0101"], "{text}");
        assert!(text.contains("did you mean `std/rust`?"), "{text}");
    }

    #[test]
    fn a_missing_file_is_e0105_at_the_path() {
        let (checked, sources) =
            check_source("import \"./nope.pipe\"\npipeline p { job a { run \"a\" } }");
        assert_eq!(codes(&checked), ["E0105"]);
        let span = checked.diagnostics[0].main_span().unwrap();
        assert_eq!(sources.snippet(span), "\"./nope.pipe\"");
    }

    #[test]
    fn an_import_cycle_lists_the_chain_in_order() {
        let (checked, sources) = check_with(
            "import \"./a.pipe\"\npipeline p { job x { run \"x\" } }",
            &[
                ("a.pipe", "import \"./b.pipe\""),
                ("b.pipe", "import \"./a.pipe\""),
            ],
        );
        let text = rendered(&checked, &sources);
        assert_eq!(codes(&checked), ["E0105"], "{text}");
        assert!(
            text.contains("import cycle: a.pipe → b.pipe → a.pipe"),
            "{text}"
        );
    }

    #[test]
    fn a_shared_import_is_loaded_once_and_imports_are_not_re_exported() {
        let (checked, sources) = check_with(
            &format!("import \"./a.pipe\"\nimport \"./b.pipe\"\n{USES_CARGO}"),
            &[
                ("a.pipe", "import \"./c.pipe\"\nimport \"std/rust\""),
                ("b.pipe", "import \"./c.pipe\""),
                ("c.pipe", "template shared() { run \"x\" }"),
            ],
        );
        let text = rendered(&checked, &sources);
        assert_eq!(codes(&checked), ["E0101"], "{text}");
        let loaded = sources.files().filter(|(_, f)| f.name == "c.pipe").count();
        assert_eq!(loaded, 1);
    }

    #[test]
    fn importing_a_module_twice_is_e0102() {
        let (checked, _) = check_source(&format!(
            "import \"std/rust\"\nimport \"std/rust\"\n{USES_CARGO}"
        ));
        assert_eq!(codes(&checked), ["E0102"]);
    }

    #[test]
    fn every_std_module_parses_and_its_templates_check() {
        for (name, _) in stdlib::modules() {
            let (checked, sources) = check_source(&format!(
                "import \"std/{name}\"\npipeline p {{ job a {{ run \"a\" }} }}"
            ));
            let errors: Vec<_> = checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .collect();
            assert!(
                errors.is_empty(),
                "std/{name}:\n{}",
                rendered(&checked, &sources)
            );
        }
    }
}
