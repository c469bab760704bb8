//! The program's namespaces, looked up by name: jobs, stages, gates, promotes (by environment),
//! environments, artifacts and secrets. Built once and shared by every rule.

use crate::check::program::{Artifact, Environment, Gate, Job, Program, Promote, Secret, Stage};
use crate::diagnostics::did_you_mean;
use crate::syntax::ast::Ident;
use std::collections::HashMap;

/// Name lookups over one program. A duplicate name keeps its first definition (the elaborator
/// reports the duplicate as E0102). Hash maps, not B-trees: every reference in a 100k-job file
/// is looked up, and a B-tree's key comparisons chase scattered strings through the cache.
/// Anything that lists names sorts them first, so messages stay deterministic.
pub(super) struct Index<'p> {
    pub program: &'p Program,
    pub jobs: HashMap<&'p str, &'p Job>,
    pub stages: HashMap<&'p str, &'p Stage>,
    pub gates: HashMap<&'p str, &'p Gate>,
    /// Keyed by the environment promoted to.
    pub promotes: HashMap<&'p str, &'p Promote>,
    pub environments: HashMap<&'p str, &'p Environment>,
    pub artifacts: HashMap<&'p str, &'p Artifact>,
    pub secrets: HashMap<&'p str, &'p Secret>,
}

fn by_name<'p, T>(items: &'p [T], name: impl Fn(&'p T) -> &'p Ident) -> HashMap<&'p str, &'p T> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        map.entry(name(item).name.as_str()).or_insert(item);
    }
    map
}

impl<'p> Index<'p> {
    pub fn new(program: &'p Program) -> Index<'p> {
        Index {
            program,
            jobs: by_name(&program.jobs, |j| &j.name),
            stages: by_name(&program.stages, |s| &s.name),
            gates: by_name(&program.gates, |g| &g.name),
            promotes: by_name(&program.promotes, |p| &p.environment),
            environments: by_name(&program.environments, |e| &e.name),
            artifacts: by_name(&program.artifacts, |a| &a.name),
            secrets: by_name(&program.secrets, |s| &s.name),
        }
    }

    /// Whether `name` is a job, stage or gate (the namespace `needs` and `after` share).
    pub fn is_step(&self, name: &str) -> bool {
        self.jobs.contains_key(name)
            || self.stages.contains_key(name)
            || self.gates.contains_key(name)
    }

    /// Job, stage and gate names, for "did you mean".
    pub fn step_names(&self) -> Vec<&'p str> {
        let mut names: Vec<&str> = self.jobs.keys().copied().collect();
        names.extend(self.stages.keys().copied());
        names.extend(self.gates.keys().copied());
        names.sort_unstable();
        names
    }

    pub fn environment_of(&self, promote: &Promote) -> Option<&'p Environment> {
        self.environments
            .get(promote.environment.name.as_str())
            .copied()
    }
}

/// The help line for an unknown name: "did you mean" when a declared name is close, otherwise
/// what is declared (or how to declare one).
pub(super) fn unknown_name_help(wrong: &str, kind: &str, candidates: &[&str]) -> String {
    if let Some(suggestion) = did_you_mean(wrong, candidates.iter().copied()) {
        return suggestion;
    }
    if candidates.is_empty() {
        return format!("no {kind} is declared in this pipeline");
    }
    let mut shown: Vec<String> = candidates
        .iter()
        .take(8)
        .map(|c| format!("`{c}`"))
        .collect();
    if candidates.len() > 8 {
        shown.push("…".to_string());
    }
    format!("declared {kind}: {}", shown.join(", "))
}

/// `promote staging`: from the keyword to the environment's name, where promote-wide problems
/// are labelled.
pub(super) fn promote_header(promote: &Promote) -> crate::diagnostics::Span {
    let name = promote.environment.span;
    crate::diagnostics::Span {
        file: name.file,
        start: promote.span.start.min(name.start),
        end: name.end,
    }
}
