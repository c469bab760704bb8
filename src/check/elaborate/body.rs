//! Block bodies: sorts the generic statements of one block by what its [`Schema`] accepts,
//! reporting unknown keys (E0103) and keys or single blocks written twice (E0102).

use super::Elaborator;
use crate::diagnostics::{Diagnostic, Span, did_you_mean};
use crate::syntax::ast::{
    Attr, Block, Expr, ExprKind, Field, Probe, Stmt, StrLit, WhenKind, WhenStmt,
};

/// Step blocks that may also be made from a template: `backup = sqlite_backup(…)`.
pub(super) const CALLABLE_BLOCKS: &[&str] =
    &["deploy", "smoke", "rollback", "backup", "restore", "verify"];

/// The statements other than attributes and blocks that a body may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StmtKind {
    Run,
    Require,
    Warn,
    RollbackWhen,
    WarnWhen,
    Probe,
    Field,
}

impl StmtKind {
    pub(super) fn word(self) -> &'static str {
        match self {
            StmtKind::Run => "run",
            StmtKind::Require => "require",
            StmtKind::Warn => "warn",
            StmtKind::RollbackWhen => "rollback when",
            StmtKind::WarnWhen => "warn when",
            StmtKind::Probe => "probe",
            StmtKind::Field => "an output field",
        }
    }
}

/// What one kind of block accepts.
pub(super) struct Schema {
    /// How the block is named in messages: "job", "promote", "the pipeline".
    pub what: &'static str,
    pub attrs: &'static [&'static str],
    /// Blocks that may appear at most once (`deploy`, `env`).
    pub blocks: &'static [&'static str],
    /// Named items that may repeat (`job`, `environment`); their names are checked elsewhere.
    pub items: &'static [&'static str],
    pub statements: &'static [StmtKind],
    /// Any attribute key is accepted (`env {}`, `matrix {}`, environment free attributes).
    pub free_attrs: bool,
}

impl Schema {
    pub const fn attrs_only(what: &'static str, attrs: &'static [&'static str]) -> Schema {
        Schema {
            what,
            attrs,
            blocks: &[],
            items: &[],
            statements: &[],
            free_attrs: false,
        }
    }

    /// Every word this block accepts, for "did you mean" and the list in the help line.
    fn accepted_words(&self) -> Vec<&'static str> {
        let mut words: Vec<&'static str> = self.attrs.to_vec();
        words.extend(self.blocks);
        words.extend(self.items);
        words.extend(
            self.statements
                .iter()
                .filter(|kind| !matches!(kind, StmtKind::Field))
                .map(|kind| kind.word()),
        );
        words
    }

    fn accepts_attr(&self, key: &str) -> bool {
        self.free_attrs || self.attrs.contains(&key)
    }

    fn accepts_block(&self, keyword: &str) -> bool {
        self.blocks.contains(&keyword) || self.items.contains(&keyword)
    }
}

/// The accepted statements of one body, in source order within each kind. Attributes and single
/// blocks hold their first occurrence only (a repeat is reported as E0102).
#[derive(Default)]
pub(super) struct Body<'a> {
    pub attrs: Vec<&'a Attr>,
    pub blocks: Vec<&'a Block>,
    pub runs: Vec<&'a StrLit>,
    pub requires: Vec<&'a Expr>,
    pub warns: Vec<&'a Expr>,
    pub whens: Vec<&'a WhenStmt>,
    pub probes: Vec<&'a Probe>,
    pub fields: Vec<&'a Field>,
}

impl<'a> Body<'a> {
    pub fn attr(&self, key: &str) -> Option<&'a Attr> {
        self.attrs.iter().copied().find(|attr| attr.key.name == key)
    }

    pub fn block(&self, keyword: &str) -> Option<&'a Block> {
        self.blocks
            .iter()
            .copied()
            .find(|block| block.keyword.name == keyword)
    }
}

impl Elaborator<'_> {
    /// Sorts `statements` by `schema`, reporting everything the block does not accept.
    pub(super) fn read_body<'a>(&mut self, statements: &'a [Stmt], schema: &Schema) -> Body<'a> {
        let mut body = Body::default();
        for statement in statements {
            match statement {
                Stmt::Attr(attr) => self.sort_attr(attr, schema, &mut body),
                Stmt::Block(block) => self.sort_block(block, schema, &mut body),
                Stmt::Run(text) => {
                    self.sort_statement(StmtKind::Run, text.span, schema, &mut body.runs, text)
                }
                Stmt::Require(expr) => self.sort_statement(
                    StmtKind::Require,
                    expr.span,
                    schema,
                    &mut body.requires,
                    expr,
                ),
                Stmt::Warn(expr) => {
                    self.sort_statement(StmtKind::Warn, expr.span, schema, &mut body.warns, expr)
                }
                Stmt::When(when) => {
                    let kind = match when.kind {
                        WhenKind::Rollback => StmtKind::RollbackWhen,
                        WhenKind::Warn => StmtKind::WarnWhen,
                    };
                    self.sort_statement(kind, when.span, schema, &mut body.whens, when)
                }
                Stmt::Probe(probe) => self.sort_statement(
                    StmtKind::Probe,
                    probe.name.span,
                    schema,
                    &mut body.probes,
                    probe,
                ),
                Stmt::Field(field) => self.sort_statement(
                    StmtKind::Field,
                    field.span,
                    schema,
                    &mut body.fields,
                    field,
                ),
            }
        }
        body
    }

    fn sort_attr<'a>(&mut self, attr: &'a Attr, schema: &Schema, body: &mut Body<'a>) {
        let key = attr.key.name.as_str();
        let callable = schema.blocks.contains(&key) && CALLABLE_BLOCKS.contains(&key);
        if callable && matches!(attr.value.kind, ExprKind::Call(_)) {
            if let Some(first) = body.block(key) {
                let message = format!("`{key}` is written twice in {}", schema.what);
                self.duplicate(message, first.keyword.span, attr.key.span);
                return;
            }
        } else if !schema.accepts_attr(key) {
            let help = if callable {
                format!("`{key}` is a block here: write `{key} {{ … }}` or `{key} = TEMPLATE(…)`")
            } else if schema.accepts_block(key) {
                format!("`{key}` is a block here: write `{key} {{ … }}`")
            } else {
                unknown_word_help(key, schema)
            };
            self.unknown(
                format!("unknown attribute `{key}` in {}", schema.what),
                attr.key.span,
                help,
            );
            return;
        }
        match body.attr(key) {
            Some(first) => self.duplicate(
                format!("`{key}` is set twice in {}", schema.what),
                first.key.span,
                attr.key.span,
            ),
            None => body.attrs.push(attr),
        }
    }

    fn sort_block<'a>(&mut self, block: &'a Block, schema: &Schema, body: &mut Body<'a>) {
        let keyword = block.keyword.name.as_str();
        if schema.items.contains(&keyword) {
            body.blocks.push(block);
            return;
        }
        if !schema.blocks.contains(&keyword) {
            let help = if schema.accepts_attr(keyword) && !schema.free_attrs {
                format!("`{keyword}` is an attribute here: write `{keyword} = …`")
            } else {
                unknown_word_help(keyword, schema)
            };
            let message = format!("unknown block `{keyword}` in {}", schema.what);
            self.unknown(message, block.keyword.span, help);
            return;
        }
        let first = body
            .block(keyword)
            .map(|b| b.keyword.span)
            .or_else(|| body.attr(keyword).map(|a| a.key.span));
        match first {
            Some(first) => self.duplicate(
                format!("`{keyword}` is written twice in {}", schema.what),
                first,
                block.keyword.span,
            ),
            None => body.blocks.push(block),
        }
    }

    fn sort_statement<'a, T>(
        &mut self,
        kind: StmtKind,
        span: Span,
        schema: &Schema,
        accepted: &mut Vec<&'a T>,
        statement: &'a T,
    ) {
        if schema.statements.contains(&kind) {
            accepted.push(statement);
            return;
        }
        let word = kind.word();
        let help = match kind {
            StmtKind::Field => {
                "output fields `NAME: TYPE` belong inside `outputs { … }`".to_string()
            }
            _ => unknown_word_help(word, schema),
        };
        self.unknown(
            format!("`{word}` is not allowed in {}", schema.what),
            span,
            help,
        );
    }

    fn unknown(&mut self, message: String, span: Span, help: String) {
        self.diagnostics.push(
            Diagnostic::error("E0103", message)
                .primary(span, "not accepted here")
                .help(help),
        );
    }

    /// E0102 with both definitions labelled.
    pub(super) fn duplicate(&mut self, message: String, first: Span, again: Span) {
        self.diagnostics.push(
            Diagnostic::error("E0102", message)
                .primary(again, "defined again here")
                .secondary(first, "first defined here")
                .help("remove one of them, or rename it"),
        );
    }

    /// E0104: `key` is required in `block_name`; `example` shows it in context.
    pub(super) fn missing(&mut self, what: &str, key: &str, at: Span, example: &str) {
        let block_word = what.split_whitespace().next().unwrap_or(what);
        self.diagnostics.push(
            Diagnostic::error("E0104", format!("{what} is missing `{key}`"))
                .primary(at, format!("this {block_word} needs `{key}`"))
                .help(format!("add `{example}` inside the {block_word} block")),
        );
    }
}

/// "did you mean …" over the words the block accepts, or else the list of them.
fn unknown_word_help(word: &str, schema: &Schema) -> String {
    let accepted = schema.accepted_words();
    did_you_mean(word, accepted.iter().copied()).unwrap_or_else(|| {
        if accepted.is_empty() {
            format!("{} takes attributes only", schema.what)
        } else {
            format!("{} accepts: {}", schema.what, accepted.join(", "))
        }
    })
}
