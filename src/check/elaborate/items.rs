//! The pipeline's smaller items: secrets, artifacts, environments (with `extends` resolved),
//! stages, gates and drills.

use super::Elaborator;
use super::body::{Schema, StmtKind};
use crate::check::program::{
    Artifact, Drill, Environment, Gate, Secret, SecretSource, Spanned, Stage, Value,
};
use crate::diagnostics::{Diagnostic, Span, did_you_mean};
use crate::syntax::ast::{Block, ExprKind, Ident};

pub(super) const SECRET: Schema = Schema::attrs_only("a secret", &["from", "scope"]);
pub(super) const ARTIFACT: Schema =
    Schema::attrs_only("an artifact", &["path", "outside_workspace"]);
pub(super) const ENVIRONMENT: Schema = Schema {
    what: "an environment",
    attrs: &["protected", "extends"],
    blocks: &[],
    items: &[],
    statements: &[],
    free_attrs: true,
};
pub(super) const STAGE: Schema = Schema {
    what: "a stage",
    attrs: &["after", "when"],
    blocks: &[],
    items: &["job"],
    statements: &[],
    free_attrs: false,
};
pub(super) const GATE: Schema = Schema {
    what: "a gate",
    attrs: &["after"],
    blocks: &[],
    items: &[],
    statements: &[StmtKind::Require, StmtKind::Warn],
    free_attrs: false,
};
pub(super) const DRILL: Schema = Schema {
    what: "a drill",
    attrs: &["environment", "rto", "rpo", "every", "secrets"],
    blocks: &["backup", "restore", "verify"],
    items: &[],
    statements: &[],
    free_attrs: false,
};

/// An environment as written, before `extends` is applied.
pub(super) struct RawEnvironment {
    pub name: Ident,
    protected: Option<Spanned<bool>>,
    extends: Option<Ident>,
    own: Vec<(Ident, Spanned<Value>)>,
    span: Span,
}

/// Where `extends` resolution stands for one environment.
#[derive(Clone)]
enum Resolution {
    Pending,
    InProgress,
    Done {
        protected: Option<Spanned<bool>>,
        attrs: Vec<(Ident, Spanned<Value>)>,
    },
}

impl Elaborator<'_> {
    /// A secret; one whose source is missing or wrong is kept with an empty source, so that
    /// the items naming it are not reported again (the program is not returned with errors).
    pub(super) fn secret(&mut self, block: &Block, name: Ident) -> Secret {
        let statements = self.statements(block);
        let body = self.read_body(statements, &SECRET);
        let scope = body.attr("scope").and_then(|attr| self.names(&attr.value));
        let source = match body.attr("from") {
            Some(from) => self.secret_source(&from.value),
            None => {
                self.missing(
                    &format!("secret `{}`", name.name),
                    "from",
                    name.span,
                    "from = env(\"DEPLOY_TOKEN\")",
                );
                None
            }
        };
        Secret {
            source: source.unwrap_or(Spanned::new(SecretSource::Env(String::new()), name.span)),
            name,
            scope,
            span: block.span,
        }
    }

    /// `env("NAME")` or `file("path")`.
    fn secret_source(&mut self, expr: &crate::syntax::ast::Expr) -> Option<Spanned<SecretSource>> {
        if let ExprKind::Call(call) = &expr.kind
            && let [arg] = call.args.as_slice()
            && arg.name.is_none()
            && let ExprKind::Str(text) = &arg.value.kind
            && let Some(value) = text.as_plain()
        {
            let source = match call.name().as_str() {
                "env" => Some(SecretSource::Env(value)),
                "file" => Some(SecretSource::File(value)),
                _ => None,
            };
            if let Some(source) = source {
                return Some(Spanned::new(source, expr.span));
            }
        }
        let found = super::values::describe(expr);
        self.diagnostics.push(
            Diagnostic::error(
                "E0201",
                format!("mismatched types: expected a secret source, found {found}"),
            )
            .primary(
                expr.span,
                format!("expected `env(\"…\")` or `file(\"…\")`, found {found}"),
            )
            .help("write `from = env(\"DEPLOY_TOKEN\")` or `from = file(\"secrets/token\")`"),
        );
        None
    }

    /// An artifact; like a secret, kept (with an empty path) when its path is missing or wrong.
    pub(super) fn artifact(&mut self, block: &Block, name: Ident) -> Artifact {
        let statements = self.statements(block);
        let body = self.read_body(statements, &ARTIFACT);
        let path = match body.attr("path") {
            Some(path) => self.plain_string(&path.value),
            None => {
                self.missing(
                    &format!("artifact `{}`", name.name),
                    "path",
                    name.span,
                    "path = \"target/release/api\"",
                );
                None
            }
        };
        let outside_workspace = body
            .attr("outside_workspace")
            .and_then(|attr| self.bool_value(&attr.value));
        Artifact {
            path: path.unwrap_or(Spanned::new(String::new(), name.span)),
            outside_workspace,
            name,
            span: block.span,
        }
    }

    pub(super) fn environment(&mut self, block: &Block, name: Ident) -> RawEnvironment {
        let statements = self.statements(block);
        let body = self.read_body(statements, &ENVIRONMENT);
        let mut environment = RawEnvironment {
            name,
            protected: None,
            extends: None,
            own: Vec::new(),
            span: block.span,
        };
        for attr in &body.attrs {
            match attr.key.name.as_str() {
                "protected" => environment.protected = self.bool_value(&attr.value),
                "extends" => environment.extends = self.name(&attr.value),
                _ => {
                    if let Some(value) = self.literal(&attr.value) {
                        environment
                            .own
                            .push((attr.key.clone(), Spanned::new(value, attr.value.span)));
                    }
                }
            }
        }
        environment
    }

    /// Applies `extends`: attributes are the parent's overridden by the environment's own, and an
    /// environment that does not say `protected` inherits it (E0101 unknown parent, E0301 cycle).
    pub(super) fn resolve_environments(&mut self, raw: Vec<RawEnvironment>) -> Vec<Environment> {
        let mut states = vec![Resolution::Pending; raw.len()];
        for index in 0..raw.len() {
            self.resolve_environment(index, &raw, &mut states, &mut Vec::new());
        }
        raw.into_iter()
            .zip(states)
            .map(|(environment, state)| {
                let (protected, attrs) = match state {
                    Resolution::Done { protected, attrs } => (protected, attrs),
                    Resolution::Pending | Resolution::InProgress => (None, environment.own.clone()),
                };
                let own_keys = environment.own.iter().map(|(key, _)| key.clone()).collect();
                Environment {
                    protected: protected.unwrap_or(Spanned::new(false, environment.name.span)),
                    name: environment.name,
                    extends: environment.extends,
                    attrs,
                    own_keys,
                    span: environment.span,
                }
            })
            .collect()
    }

    fn resolve_environment(
        &mut self,
        index: usize,
        raw: &[RawEnvironment],
        states: &mut [Resolution],
        path: &mut Vec<usize>,
    ) {
        let (Some(environment), Some(Resolution::Pending)) = (raw.get(index), states.get(index))
        else {
            return;
        };
        let mut inherited = Resolution::Done {
            protected: None,
            attrs: Vec::new(),
        };
        if let Some(parent_name) = &environment.extends {
            match raw.iter().position(|e| e.name.name == parent_name.name) {
                None => self.unknown_parent(parent_name, raw),
                Some(parent) => {
                    states[index] = Resolution::InProgress;
                    path.push(index);
                    if matches!(states.get(parent), Some(Resolution::InProgress)) {
                        self.extends_cycle(parent, raw, path);
                    } else {
                        self.resolve_environment(parent, raw, states, path);
                        inherited = states.get(parent).cloned().unwrap_or(Resolution::Pending);
                    }
                    path.pop();
                }
            }
        }
        states[index] = merge_environment(environment, inherited);
    }

    fn unknown_parent(&mut self, parent: &Ident, raw: &[RawEnvironment]) {
        let help = did_you_mean(&parent.name, raw.iter().map(|e| e.name.name.as_str()))
            .unwrap_or_else(|| "`extends` names another environment of this pipeline".to_string());
        self.diagnostics.push(
            Diagnostic::error("E0101", format!("unknown environment `{}`", parent.name))
                .primary(parent.span, "no environment with this name")
                .help(help),
        );
    }

    /// E0301 at the `extends` that closes the cycle, listing it in order.
    fn extends_cycle(&mut self, start: usize, raw: &[RawEnvironment], path: &[usize]) {
        let from = path.iter().position(|index| *index == start).unwrap_or(0);
        let members = path.get(from..).unwrap_or(&[]);
        let mut names: Vec<&str> = members
            .iter()
            .filter_map(|index| raw.get(*index))
            .map(|e| e.name.name.as_str())
            .collect();
        names.extend(raw.get(start).map(|e| e.name.name.as_str()));
        let closing = members
            .last()
            .and_then(|index| raw.get(*index))
            .and_then(|e| e.extends.as_ref());
        let Some(closing) = closing else {
            return;
        };
        self.diagnostics.push(
            Diagnostic::error(
                "E0301",
                format!(
                    "environments extend each other in a cycle: {}",
                    names.join(" → ")
                ),
            )
            .primary(closing.span, "this `extends` closes the cycle")
            .help("remove one `extends` so the chain ends at an environment that extends nothing"),
        );
    }

    /// The stage itself (jobs not yet added) and its job blocks.
    pub(super) fn stage_header<'b>(
        &mut self,
        block: &'b Block,
        name: Ident,
    ) -> (Stage, Vec<&'b Block>) {
        let statements = self.statements(block);
        let body = self.read_body(statements, &STAGE);
        let stage = Stage {
            name,
            after: body
                .attr("after")
                .and_then(|attr| self.names(&attr.value))
                .unwrap_or_default(),
            when: body.attr("when").map(|attr| attr.value.clone()),
            jobs: Vec::new(),
            span: block.span,
        };
        (stage, body.blocks)
    }

    pub(super) fn gate(&mut self, block: &Block, name: Ident) -> Gate {
        let statements = self.statements(block);
        let body = self.read_body(statements, &GATE);
        Gate {
            name,
            after: body
                .attr("after")
                .and_then(|attr| self.names(&attr.value))
                .unwrap_or_default(),
            requires: body.requires.into_iter().cloned().collect(),
            warns: body.warns.into_iter().cloned().collect(),
            span: block.span,
        }
    }

    pub(super) fn drill(&mut self, block: &Block, name: Ident) -> Drill {
        let statements = self.statements(block);
        let body = self.read_body(statements, &DRILL);
        let what = format!("drill `{}`", name.name);
        let examples = [
            ("environment", "environment = staging"),
            ("rto", "rto = 5m"),
            ("rpo", "rpo = 24h"),
        ];
        for (key, example) in examples {
            if body.attr(key).is_none() {
                self.missing(&what, key, name.span, example);
            }
        }
        let step_blocks = [
            ("backup", "backup { run \"./scripts/backup.sh\" }"),
            ("restore", "restore { run \"./scripts/restore.sh\" }"),
            ("verify", "verify { run \"./scripts/verify.sh\" }"),
        ];
        for (keyword, example) in step_blocks {
            if !Self::has_step_block(&body, keyword) {
                self.missing(&what, keyword, name.span, example);
            }
        }
        Drill {
            environment: body
                .attr("environment")
                .and_then(|attr| self.name(&attr.value)),
            secrets: body
                .attr("secrets")
                .and_then(|attr| self.names(&attr.value))
                .unwrap_or_default(),
            rto: body.attr("rto").and_then(|attr| self.duration(&attr.value)),
            rpo: body.attr("rpo").and_then(|attr| self.duration(&attr.value)),
            every: body
                .attr("every")
                .and_then(|attr| self.duration(&attr.value)),
            backup: self.step_block_of(&body, "backup"),
            restore: self.step_block_of(&body, "restore"),
            verify: self.step_block_of(&body, "verify"),
            name,
            span: block.span,
        }
    }
}

/// The effective attributes of `environment` over what it inherits, sorted by key.
fn merge_environment(environment: &RawEnvironment, inherited: Resolution) -> Resolution {
    let (inherited_protected, mut attrs) = match inherited {
        Resolution::Done { protected, attrs } => (protected, attrs),
        Resolution::Pending | Resolution::InProgress => (None, Vec::new()),
    };
    for (key, value) in &environment.own {
        attrs.retain(|(existing, _)| existing.name != key.name);
        attrs.push((key.clone(), value.clone()));
    }
    attrs.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
    Resolution::Done {
        protected: environment.protected.clone().or(inherited_protected),
        attrs,
    }
}
