//! Parsing: runs the pest grammar (`grammar/pipe.pest`) and lowers its pairs at once into the
//! spanned AST. Items and statements live here; expressions and strings in `parser/expr.rs`.

mod dedent;
mod expr;
mod literal;
mod recovery;
mod syntax_error;
#[cfg(test)]
mod tests;
pub(in crate::syntax) mod tokens;

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest_derive::Parser;

use super::ast::{
    Attr, Block, Field, Ident, Import, Module, Param, Pipeline, Probe, Stmt, Template, Type,
    TypeExpr, WhenKind, WhenStmt,
};
use crate::diagnostics::{Diagnostic, FileId, Span};

#[derive(Parser)]
#[grammar = "../grammar/pipe.pest"]
struct PipeParser;

/// Expressions, types and blocks nested deeper than this are refused (E0001) rather than
/// risking the stack; real pipelines nest a handful of levels.
const MAX_NESTING: usize = 128;

/// At most this many syntax errors are reported for one file; past it recovery stops.
const MAX_SYNTAX_ERRORS: usize = 50;

/// Parses one file. After a syntax error the parser recovers (see `recovery`) and carries on,
/// so several errors are reported at once; the module then holds the statements that parsed
/// and `recovered` names the regions it skipped or repaired. When recovery gives up, the
/// module is empty.
pub fn parse(file: FileId, text: &str) -> (Module, Vec<Diagnostic>) {
    let mut repair = recovery::Repair::new(text);
    let mut diagnostics = repair.close_unclosed_blocks(file);
    let mut skipped = false;
    for _ in 0..MAX_SYNTAX_ERRORS {
        let error = match PipeParser::parse(Rule::file, repair.text()) {
            Ok(pairs) => {
                let (mut module, lowered) = lower(file, repair.text(), pairs);
                diagnostics.extend(lowered);
                module.recovered = repair.repaired(file);
                return (module, within(text.len(), diagnostics));
            }
            Err(error) => error,
        };
        // Nothing follows an error at the end of the file (or past pest's own limits), and
        // an end reached after a statement was skipped is that statement's doing.
        let at_end = syntax_error::ends_parsing(repair.text(), &error);
        if !(at_end && skipped) {
            diagnostics.push(syntax_error::from_pest(file, repair.text(), &error));
        }
        if at_end || !repair.skip_statement_at(syntax_error::position(&error)) {
            break;
        }
        skipped = true;
    }
    (empty_module(), within(text.len(), diagnostics))
}

/// Labels clamped to the real text: the working copy may end in added `}`s.
fn within(length: usize, mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    for label in diagnostics.iter_mut().flat_map(|d| d.labels.iter_mut()) {
        let end = u32::try_from(length).unwrap_or(u32::MAX);
        label.span.start = label.span.start.min(end);
        label.span.end = label.span.end.min(end);
    }
    diagnostics
}

fn lower<'t>(file: FileId, text: &'t str, pairs: Pairs<'t, Rule>) -> (Module, Vec<Diagnostic>) {
    let mut lowerer = Lowerer {
        file,
        text,
        diagnostics: Vec::new(),
        depth: 0,
    };
    match lowerer.file(pairs) {
        Ok(module) => (module, lowerer.diagnostics),
        Err(error) => (empty_module(), vec![error.into_diagnostic()]),
    }
}

fn empty_module() -> Module {
    Module {
        imports: Vec::new(),
        templates: Vec::new(),
        pipelines: Vec::new(),
        recovered: Vec::new(),
    }
}

/// Why lowering stopped. Both are E0001: the file cannot be turned into a tree.
#[derive(Debug)]
enum LowerError {
    /// Nesting beyond [`MAX_NESTING`].
    TooDeep(Span),
    /// The pairs did not have the shape the grammar promises (a bug, reported, not panicked).
    Shape(Span),
}

impl LowerError {
    fn into_diagnostic(self) -> Diagnostic {
        match self {
            LowerError::TooDeep(span) => syntax_error::too_deeply_nested(span),
            LowerError::Shape(span) => Diagnostic::error(
                "E0001",
                "syntax error: the parser could not make sense of this (an internal error)",
            )
            .primary(span, "here")
            .help("please report this file; rewriting the marked part may work around it"),
        }
    }
}

type Lowered<T> = Result<T, LowerError>;

/// Walks the pest pairs of one file, building the AST and collecting E0002 diagnostics.
struct Lowerer<'t> {
    file: FileId,
    text: &'t str,
    diagnostics: Vec<Diagnostic>,
    depth: usize,
}

/// Punctuation pairs carry no meaning once the grammar has matched them.
fn is_punctuation(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::rbrace
            | Rule::rparen
            | Rule::rbracket
            | Rule::langle
            | Rule::rangle
            | Rule::colon
            | Rule::equals
            | Rule::comma
            | Rule::EOI
    )
}

/// Rules whose pest span is already exact: tokens, and rules that end in a required token.
/// (The others may end in an optional part, after which pest has skipped whitespace.)
fn ends_at_its_last_token(rule: Rule) -> bool {
    !matches!(
        rule,
        Rule::file
            | Rule::import
            | Rule::param
            | Rule::when_stmt
            | Rule::require_stmt
            | Rule::warn_stmt
            | Rule::probe_stmt
            | Rule::attr_value
            | Rule::block_rest
            | Rule::expr
            | Rule::arg
    )
}

/// The meaningful children of a pair: punctuation and `EOI` skipped.
fn children<'t>(pair: Pair<'t, Rule>) -> impl Iterator<Item = Pair<'t, Rule>> {
    pair.into_inner()
        .filter(|child| !is_punctuation(child.as_rule()))
}

impl<'t> Lowerer<'t> {
    /// The pair's span, ending at its last token: pest's own span of a rule that ends in an
    /// optional part also covers the whitespace and comments skipped while trying it.
    fn span(&self, pair: &Pair<'t, Rule>) -> Span {
        let mut last = pair.clone();
        while !ends_at_its_last_token(last.as_rule())
            && let Some(child) = last.clone().into_inner().next_back()
        {
            last = child;
        }
        Span::new(self.file, pair.as_span().start(), last.as_span().end())
    }

    fn shape_error(&self, pair: &Pair<'t, Rule>) -> LowerError {
        LowerError::Shape(self.span(pair))
    }

    /// The next child, which must be `rule`.
    fn expect(
        &self,
        parent: &Pair<'t, Rule>,
        children: &mut impl Iterator<Item = Pair<'t, Rule>>,
        rule: Rule,
    ) -> Lowered<Pair<'t, Rule>> {
        match children.next() {
            Some(child) if child.as_rule() == rule => Ok(child),
            Some(child) => Err(self.shape_error(&child)),
            None => Err(self.shape_error(parent)),
        }
    }

    /// Runs `lower` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        pair: &Pair<'t, Rule>,
        lower: impl FnOnce(&mut Self) -> Lowered<T>,
    ) -> Lowered<T> {
        if self.depth >= MAX_NESTING {
            return Err(LowerError::TooDeep(self.span(pair)));
        }
        self.depth += 1;
        let result = lower(self);
        self.depth -= 1;
        result
    }

    fn ident(&self, pair: &Pair<'t, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn file(&mut self, mut pairs: Pairs<'t, Rule>) -> Lowered<Module> {
        let mut module = empty_module();
        let Some(file) = pairs.next() else {
            return Ok(module);
        };
        for item in children(file) {
            match item.as_rule() {
                Rule::import => module.imports.push(self.import(item)?),
                Rule::template => module.templates.push(self.template(item)?),
                Rule::pipeline => module.pipelines.push(self.pipeline(item)?),
                _ => return Err(self.shape_error(&item)),
            }
        }
        Ok(module)
    }

    fn import(&mut self, pair: Pair<'t, Rule>) -> Lowered<Import> {
        let span = self.span(&pair);
        let mut alias = None;
        let mut path = None;
        for child in children(pair) {
            match child.as_rule() {
                Rule::string | Rule::triple_string => path = Some(self.string_lit(child)?),
                Rule::ident => alias = Some(self.ident(&child)),
                _ => {}
            }
        }
        let Some(path) = path else {
            return Err(LowerError::Shape(span));
        };
        let text = path.as_plain().unwrap_or_else(|| {
            self.diagnostics.push(
                Diagnostic::error(
                    "E0002",
                    "invalid literal: an import path cannot interpolate",
                )
                .primary(path.span, "this path holds `${{ … }}`")
                .help("write the path literally, e.g. `import \"std/rust\"`"),
            );
            String::new()
        });
        Ok(Import {
            path: text,
            path_span: path.span,
            alias,
            span,
        })
    }

    fn template(&mut self, pair: Pair<'t, Rule>) -> Lowered<Template> {
        let span = self.span(&pair);
        let doc = doc_comment(self.text, pair.as_span().start());
        let mut name = None;
        let mut params = Vec::new();
        let mut body = Vec::new();
        for child in children(pair) {
            match child.as_rule() {
                Rule::kw_template => {}
                Rule::ident => name = Some(self.ident(&child)),
                Rule::param => params.push(self.param(child)?),
                Rule::block_body => body = self.block_body(child)?,
                _ => return Err(self.shape_error(&child)),
            }
        }
        let name = name.ok_or(LowerError::Shape(span))?;
        Ok(Template {
            name,
            params,
            body,
            doc,
            span,
        })
    }

    fn param(&mut self, pair: Pair<'t, Rule>) -> Lowered<Param> {
        let span = self.span(&pair);
        let mut parts = children(pair.clone());
        let name = self.ident(&self.expect(&pair, &mut parts, Rule::ident)?);
        let ty = self.type_expr(self.expect(&pair, &mut parts, Rule::type_expr)?)?;
        let default = match parts.next() {
            Some(value) => Some(self.expr(value)?),
            None => None,
        };
        Ok(Param {
            name,
            ty,
            default,
            span,
        })
    }

    fn type_expr(&mut self, pair: Pair<'t, Rule>) -> Lowered<TypeExpr> {
        let span = self.span(&pair);
        let ty = self.nested(&pair, |this| this.type_of(pair.clone()))?;
        Ok(TypeExpr { ty, span })
    }

    fn type_of(&mut self, pair: Pair<'t, Rule>) -> Lowered<Type> {
        let Some(inner) = children(pair.clone()).next() else {
            return Err(self.shape_error(&pair));
        };
        match inner.as_rule() {
            Rule::scalar_type => match inner.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "duration" => Ok(Type::Duration),
                "percent" => Ok(Type::Percent),
                _ => Err(self.shape_error(&inner)),
            },
            Rule::list_type => {
                let element = children(inner.clone())
                    .find(|child| child.as_rule() == Rule::type_expr)
                    .ok_or_else(|| self.shape_error(&inner))?;
                Ok(Type::List(Box::new(self.type_expr(element)?.ty)))
            }
            _ => Err(self.shape_error(&inner)),
        }
    }

    fn pipeline(&mut self, pair: Pair<'t, Rule>) -> Lowered<Pipeline> {
        let span = self.span(&pair);
        let mut parts = children(pair.clone());
        let _keyword = self.expect(&pair, &mut parts, Rule::kw_pipeline)?;
        let name = self.ident(&self.expect(&pair, &mut parts, Rule::ident)?);
        let body = self.block_body(self.expect(&pair, &mut parts, Rule::block_body)?)?;
        Ok(Pipeline { name, body, span })
    }

    /// The statements of `{ … }`. They arrive flat: a generic statement is its first word
    /// followed by the rest (`attr_value`, `field_type` or `block_rest`).
    fn block_body(&mut self, pair: Pair<'t, Rule>) -> Lowered<Vec<Stmt>> {
        self.nested(&pair, |this| {
            let mut parts = children(pair.clone());
            let mut stmts = Vec::new();
            while let Some(first) = parts.next() {
                let stmt = if first.as_rule() == Rule::ident {
                    let rest = parts.next().ok_or_else(|| this.shape_error(&first))?;
                    this.generic(&first, rest)?
                } else {
                    this.keyword_stmt(first)?
                };
                stmts.push(stmt);
            }
            Ok(stmts)
        })
    }

    fn keyword_stmt(&mut self, pair: Pair<'t, Rule>) -> Lowered<Stmt> {
        let rule = pair.as_rule();
        let mut words = children(pair.clone());
        match rule {
            Rule::when_stmt => self.when_stmt(pair).map(|when| Stmt::When(Box::new(when))),
            Rule::run_stmt => {
                let command = words.nth(1).ok_or_else(|| self.shape_error(&pair))?;
                Ok(Stmt::Run(self.string_lit(command)?))
            }
            Rule::require_stmt | Rule::warn_stmt => {
                let condition = words.nth(1).ok_or_else(|| self.shape_error(&pair))?;
                let condition = self.expr(condition)?;
                Ok(if rule == Rule::require_stmt {
                    Stmt::Require(condition)
                } else {
                    Stmt::Warn(condition)
                })
            }
            Rule::probe_stmt => self.probe(pair).map(|probe| Stmt::Probe(Box::new(probe))),
            _ => Err(self.shape_error(&pair)),
        }
    }

    /// `KEY = value`, `NAME: type` or a block, told apart by what follows the first word.
    fn generic(&mut self, key: &Pair<'t, Rule>, rest: Pair<'t, Rule>) -> Lowered<Stmt> {
        let span = self.span(key).to(self.span(&rest));
        let key = self.ident(key);
        let inner = children(rest.clone()).next();
        match (rest.as_rule(), inner) {
            (Rule::attr_value, Some(value)) => {
                let value = self.expr(value)?;
                Ok(Stmt::Attr(Attr { key, value, span }))
            }
            (Rule::field_type, Some(ty)) => {
                let ty = self.type_expr(ty)?;
                Ok(Stmt::Field(Field {
                    name: key,
                    ty,
                    span,
                }))
            }
            (Rule::block_rest, _) => self
                .block(key, rest, span)
                .map(|block| Stmt::Block(Box::new(block))),
            _ => Err(self.shape_error(&rest)),
        }
    }

    fn when_stmt(&mut self, pair: Pair<'t, Rule>) -> Lowered<WhenStmt> {
        let span = self.span(&pair);
        let mut parts = children(pair.clone());
        let kind = match self.expect(&pair, &mut parts, Rule::when_kind)?.as_str() {
            "rollback" => WhenKind::Rollback,
            _ => WhenKind::Warn,
        };
        let _when = self.expect(&pair, &mut parts, Rule::kw_when)?;
        let condition = self.expr(self.expect(&pair, &mut parts, Rule::expr)?)?;
        let window = match parts.nth(1) {
            Some(window) => Some(self.expr(window)?),
            None => None,
        };
        Ok(WhenStmt {
            kind,
            condition,
            window,
            span,
        })
    }

    fn probe(&mut self, pair: Pair<'t, Rule>) -> Lowered<Probe> {
        let span = self.span(&pair);
        let mut parts = children(pair.clone());
        let _keyword = self.expect(&pair, &mut parts, Rule::kw_probe)?;
        let name = self.ident(&self.expect(&pair, &mut parts, Rule::ident)?);
        let ty = self.type_expr(self.expect(&pair, &mut parts, Rule::type_expr)?)?;
        let source = self.expr(self.expect(&pair, &mut parts, Rule::expr)?)?;
        let every = match parts.nth(1) {
            Some(every) => Some(self.expr(every)?),
            None => None,
        };
        Ok(Probe {
            name,
            ty,
            source,
            every,
            span,
        })
    }

    /// The rest of `KEYWORD [NAME] [LITERAL] [= call] [{ … }]`, told apart by child rule.
    fn block(&mut self, keyword: Ident, rest: Pair<'t, Rule>, span: Span) -> Lowered<Block> {
        let mut block = Block {
            keyword,
            name: None,
            arg: None,
            template: None,
            body: None,
            span,
        };
        for part in children(rest) {
            match part.as_rule() {
                Rule::ident => block.name = Some(self.ident(&part)),
                Rule::template_call => block.template = Some(self.call(part)?),
                Rule::block_body => block.body = Some(self.block_body(part)?),
                _ => block.arg = Some(self.operand(part)?),
            }
        }
        Ok(block)
    }
}

/// The `//` comment lines directly above byte `start` (no blank line between), without the
/// `//` and one following space, joined by newlines.
fn doc_comment(text: &str, start: usize) -> String {
    let before = text.get(..start).unwrap_or("");
    // The template keyword must start its line for the comment above to be its doc.
    let Some(line_start) = before.rfind('\n') else {
        return String::new();
    };
    if !before[line_start..].trim().is_empty() {
        return String::new();
    }
    let mut lines = Vec::new();
    for line in before[..line_start].rsplit('\n') {
        let Some(comment) = line.trim().strip_prefix("//") else {
            break;
        };
        let comment = comment.trim_start_matches('/');
        lines.push(comment.strip_prefix(' ').unwrap_or(comment).trim_end());
    }
    lines.reverse();
    lines.join("\n")
}
