//! Every name in a file and what it means: each occurrence of a job, stage, gate, environment,
//! artifact, secret, probe, output, template, parameter or module, keyed by its namespace.

use crate::diagnostics::{SourceMap, Span};
use crate::syntax::ast::{
    Arg, Block, Call, Expr, ExprKind, Ident, Module, Segment, Stmt, StrLit, Template,
};
use std::collections::HashMap;

/// The namespaces names live in. `Step` is the one `needs` and `after` share (jobs, stages and
/// gates); promotes are named by their environment, so they live in `Environment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    Step,
    Environment,
    Artifact,
    Secret,
    Drill,
    /// `PROMOTE.PROBE`: a probe is visible in its own watch.
    Probe,
    /// `JOB.FIELD`
    Output,
    /// As the entry file calls it: `cargo`, `rust.cargo`.
    Template,
    /// `TEMPLATE.PARAM`
    Param,
    /// `std/rust`, `lib/build.pipe`
    Module,
}

/// A name's identity: its namespace and its (qualified) name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Namespace,
    pub name: String,
}

/// One place a name is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub key: Key,
    pub span: Span,
    pub is_def: bool,
}

/// What a declaration says, for hover: what it is, its header as written, its doc comment.
#[derive(Debug, Clone, Default)]
pub struct Decl {
    pub what: &'static str,
    pub header: String,
    pub doc: String,
}

/// The names of one compilation, as seen from the entry file (file 0).
#[derive(Debug, Default)]
pub struct Symbols {
    pub occurrences: Vec<Occurrence>,
    pub decls: HashMap<Key, Decl>,
    /// Parameters of each callable template, in order, for completion: `(name, type, default)`.
    pub template_params: HashMap<String, Vec<(String, String, Option<String>)>>,
}

/// Words that look like calls but are built in, never templates.
const BUILTIN_CALLS: &[&str] = &["env", "file", "command"];
/// Attribute keys whose value names items, and the namespace of those names.
const REFERENCE_KEYS: &[(&str, Namespace)] = &[
    ("needs", Namespace::Step),
    ("after", Namespace::Step),
    ("produces", Namespace::Artifact),
    ("artifact", Namespace::Artifact),
    ("secrets", Namespace::Secret),
    ("environment", Namespace::Environment),
    ("extends", Namespace::Environment),
];

impl Symbols {
    /// Collects the names of `module` (the entry file) and of the templates it imports, whose
    /// parsed modules come with the resolved names they were imported under.
    pub fn collect(module: &Module, sources: &SourceMap, imported: &[Imported]) -> Symbols {
        let mut collector = Collector {
            sources,
            symbols: Symbols::default(),
            context: Context::default(),
        };
        for import in imported {
            collector.imported(import);
        }
        for template in &module.templates {
            collector.template(template, "");
        }
        for pipeline in &module.pipelines {
            collector.body(&pipeline.body);
        }
        let mut symbols = collector.symbols;
        symbols.retarget_after();
        symbols
    }

    /// The occurrence under a byte offset of the entry file.
    pub fn at(&self, offset: usize) -> Option<&Occurrence> {
        self.occurrences.iter().find(|o| {
            o.span.file == 0 && (o.span.start as usize..=o.span.end as usize).contains(&offset)
        })
    }

    pub fn definitions<'s>(&'s self, key: &'s Key) -> impl Iterator<Item = &'s Occurrence> + 's {
        self.occurrences
            .iter()
            .filter(move |o| o.is_def && &o.key == key)
    }

    pub fn all<'s>(&'s self, key: &'s Key) -> impl Iterator<Item = &'s Occurrence> + 's {
        self.occurrences.iter().filter(move |o| &o.key == key)
    }

    /// Declared names of one namespace, sorted and unique.
    pub fn names(&self, namespace: Namespace) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .occurrences
            .iter()
            .filter(|o| o.is_def && o.key.namespace == namespace)
            .map(|o| o.key.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// `after = [staging]` names a promote when no job, stage or gate is called that.
    fn retarget_after(&mut self) {
        let steps: std::collections::HashSet<String> = self
            .names(Namespace::Step)
            .into_iter()
            .map(str::to_string)
            .collect();
        let environments: std::collections::HashSet<String> = self
            .occurrences
            .iter()
            .filter(|o| o.key.namespace == Namespace::Environment)
            .map(|o| o.key.name.clone())
            .collect();
        for occurrence in &mut self.occurrences {
            let key = &mut occurrence.key;
            if key.namespace == Namespace::Step
                && !steps.contains(&key.name)
                && environments.contains(&key.name)
            {
                key.namespace = Namespace::Environment;
            }
        }
    }
}

/// A module the entry file imports: its parsed text, the name it resolved to (`std/rust`,
/// `lib/x.pipe`), the alias it is called by, and where the import path is written.
pub struct Imported<'m> {
    pub module: &'m Module,
    pub resolved: String,
    pub file: crate::diagnostics::FileId,
    pub alias: Option<String>,
    pub path_span: Span,
}

/// Where the walk is: which item encloses the statements being read.
#[derive(Default, Clone)]
struct Context {
    /// The promote's environment while inside a promote (probes are keyed by it).
    promote: Option<String>,
    /// The template being read, and its parameter names, inside a template body.
    template: Option<(String, Vec<String>)>,
}

struct Collector<'a> {
    sources: &'a SourceMap,
    symbols: Symbols,
    context: Context,
}

impl Collector<'_> {
    fn add(&mut self, namespace: Namespace, name: &str, span: Span, is_def: bool) {
        let key = Key {
            namespace,
            name: name.to_string(),
        };
        self.symbols
            .occurrences
            .push(Occurrence { key, span, is_def });
    }

    fn declare(&mut self, namespace: Namespace, ident: &Ident, what: &'static str, item: Span) {
        self.declare_named(
            namespace,
            &ident.name,
            ident.span,
            what,
            item,
            String::new(),
        );
    }

    fn declare_named(
        &mut self,
        namespace: Namespace,
        name: &str,
        span: Span,
        what: &'static str,
        item: Span,
        doc: String,
    ) {
        self.add(namespace, name, span, true);
        let key = Key {
            namespace,
            name: name.to_string(),
        };
        let header = header_of(self.sources.snippet(item));
        self.symbols
            .decls
            .entry(key)
            .or_insert(Decl { what, header, doc });
    }

    /// An imported module: its path is a reference to the module, whose templates become
    /// callable as `alias.name` (or `name` without an alias).
    fn imported(&mut self, import: &Imported) {
        let module_span = Span::new(import.file, 0, 0);
        let what = "module";
        self.declare_named(
            Namespace::Module,
            &import.resolved,
            module_span,
            what,
            module_span,
            String::new(),
        );
        self.add(Namespace::Module, &import.resolved, import.path_span, false);
        let prefix = import
            .alias
            .as_ref()
            .map_or(String::new(), |a| format!("{a}."));
        for template in &import.module.templates {
            self.template(template, &prefix);
        }
    }

    fn template(&mut self, template: &Template, prefix: &str) {
        let name = format!("{prefix}{}", template.name.name);
        let header = signature(self.sources, template);
        let key = Key {
            namespace: Namespace::Template,
            name: name.clone(),
        };
        self.add(Namespace::Template, &name, template.name.span, true);
        self.symbols.decls.entry(key).or_insert(Decl {
            what: "template",
            header,
            doc: template.doc.clone(),
        });
        let mut params = Vec::new();
        for param in &template.params {
            let qualified = format!("{name}.{}", param.name.name);
            let span = param.span;
            self.declare_named(
                Namespace::Param,
                &qualified,
                param.name.span,
                "parameter",
                span,
                String::new(),
            );
            let default = param
                .default
                .as_ref()
                .map(|d| self.sources.snippet(d.span).to_string());
            params.push((param.name.name.clone(), param.ty.ty.to_string(), default));
        }
        self.symbols.template_params.insert(name.clone(), params);
        if template.name.span.file == 0 {
            let names = template
                .params
                .iter()
                .map(|p| p.name.name.clone())
                .collect();
            let saved = self.context.template.replace((name, names));
            self.body(&template.body);
            self.context.template = saved;
        }
    }

    fn body(&mut self, statements: &[Stmt]) {
        for statement in statements {
            self.statement(statement);
        }
    }

    fn statement(&mut self, statement: &Stmt) {
        match statement {
            Stmt::Attr(attr) => {
                let namespace = REFERENCE_KEYS
                    .iter()
                    .find(|(key, _)| *key == attr.key.name)
                    .map(|(_, namespace)| *namespace);
                match namespace {
                    Some(namespace) => self.names_in(&attr.value, namespace),
                    None => self.expr(&attr.value),
                }
            }
            Stmt::Run(string) => self.string(string),
            Stmt::Require(expr) | Stmt::Warn(expr) => self.expr(expr),
            Stmt::When(when) => {
                self.expr(&when.condition);
                if let Some(window) = &when.window {
                    self.expr(window);
                }
            }
            Stmt::Probe(probe) => {
                if let Some(promote) = self.context.promote.clone() {
                    let name = format!("{promote}.{}", probe.name.name);
                    let (span, item) = (probe.name.span, probe.span);
                    let doc = String::new();
                    self.declare_named(Namespace::Probe, &name, span, "probe", item, doc);
                }
                self.expr(&probe.source);
            }
            Stmt::Field(_) => {}
            Stmt::Block(block) => self.block(block),
        }
    }

    fn block(&mut self, block: &Block) {
        let name = block.name.as_ref();
        match (block.keyword.name.as_str(), name) {
            ("job", Some(name)) => {
                self.declare(Namespace::Step, name, "job", block.span);
                self.outputs(name, block.body.as_deref().unwrap_or_default());
            }
            ("stage", Some(name)) => self.declare(Namespace::Step, name, "stage", block.span),
            ("gate", Some(name)) => self.declare(Namespace::Step, name, "gate", block.span),
            ("environment", Some(name)) => {
                self.declare(Namespace::Environment, name, "environment", block.span)
            }
            ("artifact", Some(name)) => {
                self.declare(Namespace::Artifact, name, "artifact", block.span)
            }
            ("secret", Some(name)) => self.declare(Namespace::Secret, name, "secret", block.span),
            ("drill", Some(name)) => self.declare(Namespace::Drill, name, "drill", block.span),
            ("promote", Some(name)) => {
                self.add(Namespace::Environment, &name.name, name.span, false)
            }
            _ => {}
        }
        if let Some(call) = &block.template {
            self.call(call);
        }
        let promote = (block.keyword.name == "promote")
            .then(|| name.map(|n| n.name.clone()))
            .flatten();
        let saved = self.context.clone();
        if promote.is_some() {
            self.context.promote = promote;
        }
        if let Some(body) = &block.body {
            self.body(body);
        }
        self.context = saved;
    }

    /// `outputs { coverage: number }` inside job `job`.
    fn outputs(&mut self, job: &Ident, body: &[Stmt]) {
        let blocks = body.iter().filter_map(|s| match s {
            Stmt::Block(b) if b.keyword.name == "outputs" => b.body.as_deref(),
            _ => None,
        });
        for fields in blocks.collect::<Vec<_>>() {
            for field in fields {
                if let Stmt::Field(field) = field {
                    let name = format!("{}.{}", job.name, field.name.name);
                    let (span, item) = (field.name.span, field.span);
                    let doc = String::new();
                    self.declare_named(Namespace::Output, &name, span, "output", item, doc);
                }
            }
        }
    }

    /// A value that names items: `[build, test]` or `service`.
    fn names_in(&mut self, value: &Expr, namespace: Namespace) {
        match &value.kind {
            ExprKind::List(items) => {
                for item in items {
                    self.names_in(item, namespace);
                }
            }
            ExprKind::Path(path) if path.len() == 1 => {
                self.add(namespace, &path[0].name, path[0].span, false)
            }
            _ => self.expr(value),
        }
    }

    fn string(&mut self, string: &StrLit) {
        for segment in &string.segments {
            if let Segment::Interp(expr) = segment {
                self.expr(expr);
            }
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Str(string) => self.string(string),
            ExprKind::Path(path) => self.path(path),
            ExprKind::List(items) => items.iter().for_each(|item| self.expr(item)),
            ExprKind::Call(call) => self.call(call),
            ExprKind::Not(inner) => self.expr(inner),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Number(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Percent(_) => {}
        }
    }

    fn path(&mut self, path: &[Ident]) {
        match path {
            [root, job, rest @ ..] if root.name == "jobs" => {
                self.add(Namespace::Step, &job.name, job.span, false);
                if let [outputs, field, ..] = rest
                    && outputs.name == "outputs"
                {
                    let name = format!("{}.{}", job.name, field.name);
                    self.add(Namespace::Output, &name, field.span, false);
                }
            }
            [root, secret] if root.name == "secrets" => {
                self.add(Namespace::Secret, &secret.name, secret.span, false)
            }
            [only] => self.bare_name(only),
            _ => {}
        }
    }

    /// A one-word name: a template's parameter inside its body, or a probe inside a watch.
    fn bare_name(&mut self, ident: &Ident) {
        if let Some((template, params)) = &self.context.template
            && params.contains(&ident.name)
        {
            let name = format!("{template}.{}", ident.name);
            self.add(Namespace::Param, &name, ident.span, false);
            return;
        }
        if let Some(promote) = &self.context.promote {
            let name = format!("{promote}.{}", ident.name);
            let key = Key {
                namespace: Namespace::Probe,
                name: name.clone(),
            };
            if self.symbols.decls.contains_key(&key) {
                self.add(Namespace::Probe, &name, ident.span, false);
            }
        }
    }

    fn call(&mut self, call: &Call) {
        let name = call.name();
        if !BUILTIN_CALLS.contains(&name.as_str()) {
            self.add(Namespace::Template, &name, call.callee_span(), false);
            for Arg { name: arg, .. } in &call.args {
                if let Some(arg) = arg {
                    let qualified = format!("{name}.{}", arg.name);
                    self.add(Namespace::Param, &qualified, arg.span, false);
                }
            }
        }
        for arg in &call.args {
            self.expr(&arg.value);
        }
    }
}

/// The first line of an item as written, without its body: `job build`, `probe p95: duration = …`.
fn header_of(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let line = line.split(" {").next().unwrap_or(line);
    line.trim().to_string()
}

/// `template cargo(task: string, timeout: duration = 15m)`.
fn signature(sources: &SourceMap, template: &Template) -> String {
    let params: Vec<String> = template
        .params
        .iter()
        .map(|p| sources.snippet(p.span).to_string())
        .collect();
    format!("template {}({})", template.name.name, params.join(", "))
}
