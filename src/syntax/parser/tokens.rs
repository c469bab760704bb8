//! The token stream of a file for the formatter: every token and comment in order, each
//! classified by the grammar rule that matched it, so `pipe fmt` never has to guess.

use pest::Parser as _;
use pest::iterators::Pair;

use super::{MAX_NESTING, PipeParser, Rule, syntax_error};
use crate::diagnostics::{Diagnostic, FileId, Span};
use std::collections::HashSet;
use std::ops::Range;

/// What a token is, as far as layout is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Identifiers, keywords, dotted paths, numbers, `and`/`or`/`not`, type names.
    Word,
    /// A whole string literal (`"…"` or `"""…"""`), interpolations included: never touched.
    Str,
    LineComment,
    BlockComment,
    Open(Bracket),
    /// `}`, `]` or `)`, with the kind of bracket it closes.
    Close(Bracket),
    /// Between list items, call arguments and template parameters.
    Comma,
    /// A `;` or `,` after a statement.
    Separator,
    /// `name: type`, `arg: value`.
    Colon,
    /// The `=` of an attribute (`key = value`).
    Assign,
    /// Any other `=`: a parameter default, `job x = template(…)`, a probe's command.
    Equals,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    Operator,
    /// The `<` and `>` of `list<T>`.
    Angle,
    /// A byte-order mark opening the file.
    Bom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// `{ … }`: a block body.
    Brace,
    /// `[ … ]`: a list value.
    List,
    /// `( … )` holding call arguments or template parameters.
    Call,
    /// `( … )` grouping an expression.
    Paren,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub range: Range<usize>,
    /// The token opens a statement or a top-level item.
    pub starts_statement: bool,
}

/// The tokens of `text`, or the syntax error that stops it from parsing.
pub fn tokens(file: FileId, text: &str) -> Result<Vec<Token>, Diagnostic> {
    let pairs = PipeParser::parse(Rule::file, text)
        .map_err(|error| syntax_error::from_pest(file, text, &error))?;
    let mut lexer = Lexer {
        file,
        text,
        cursor: 0,
        open: Vec::new(),
        tokens: Vec::new(),
        parens: HashSet::new(),
        statements: HashSet::new(),
    };
    for pair in pairs.flatten() {
        lexer.visit(&pair)?;
    }
    lexer.gap(text.len())?;
    Ok(lexer.tokens)
}

struct Lexer<'t> {
    file: FileId,
    text: &'t str,
    /// Everything before it has been turned into tokens.
    cursor: usize,
    /// Open brackets, bounded like the parser's nesting so formatting cannot overflow the stack.
    open: Vec<Bracket>,
    tokens: Vec<Token>,
    /// Where an expression's grouping `(` stands (any other `(` opens arguments or parameters).
    parens: HashSet<usize>,
    statements: HashSet<usize>,
}

impl Lexer<'_> {
    fn visit(&mut self, pair: &Pair<'_, Rule>) -> Result<(), Diagnostic> {
        let span = pair.as_span();
        if span.start() < self.cursor {
            // Inside a string already taken whole.
            return Ok(());
        }
        match pair.as_rule() {
            Rule::paren => {
                self.parens.insert(span.start());
            }
            Rule::block_body => {
                let starts = pair.clone().into_inner().filter(|child| {
                    matches!(
                        child.as_rule(),
                        Rule::ident
                            | Rule::run_stmt
                            | Rule::when_stmt
                            | Rule::require_stmt
                            | Rule::warn_stmt
                            | Rule::probe_stmt
                    )
                });
                self.statements
                    .extend(starts.map(|child| child.as_span().start()));
            }
            Rule::import | Rule::template | Rule::pipeline => {
                self.statements.insert(span.start());
            }
            rule => {
                if let Some(kind) = token_kind(rule) {
                    self.gap(span.start())?;
                    self.push(kind, span.start()..span.end());
                    self.cursor = span.end();
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, kind: TokenKind, range: Range<usize>) {
        let kind = match kind {
            TokenKind::Close(_) => TokenKind::Close(self.open.pop().unwrap_or(Bracket::Brace)),
            kind => kind,
        };
        let starts_statement = self.statements.contains(&range.start);
        self.tokens.push(Token {
            kind,
            range,
            starts_statement,
        });
    }

    /// The text between two rule tokens: whitespace, comments, and the punctuation the grammar
    /// matches as plain literals.
    fn gap(&mut self, end: usize) -> Result<(), Diagnostic> {
        while self.cursor < end {
            let at = self.cursor;
            let rest = &self.text[at..end];
            let (kind, len) = match rest.as_bytes()[0] {
                b' ' | b'\t' | b'\n' | b'\r' => {
                    self.cursor += 1;
                    continue;
                }
                b'/' if rest.starts_with("//") => (
                    TokenKind::LineComment,
                    rest.find('\n').unwrap_or(rest.len()),
                ),
                b'/' if rest.starts_with("/*") => (
                    TokenKind::BlockComment,
                    rest[2..].find("*/").map_or(rest.len(), |n| n + 4),
                ),
                b'{' => (TokenKind::Open(Bracket::Brace), 1),
                b'[' => (TokenKind::Open(Bracket::List), 1),
                b'(' if self.parens.contains(&at) => (TokenKind::Open(Bracket::Paren), 1),
                b'(' => (TokenKind::Open(Bracket::Call), 1),
                b'=' => (TokenKind::Assign, 1),
                b':' => (TokenKind::Colon, 1),
                b';' | b',' => (TokenKind::Separator, 1),
                _ if rest.starts_with('\u{FEFF}') => (TokenKind::Bom, '\u{FEFF}'.len_utf8()),
                _ => return Err(self.unexpected(at)),
            };
            if let TokenKind::Open(bracket) = kind {
                self.open(bracket, at)?;
            }
            self.push(kind, at..at + len);
            self.cursor = at + len;
        }
        Ok(())
    }

    fn open(&mut self, bracket: Bracket, at: usize) -> Result<(), Diagnostic> {
        self.open.push(bracket);
        if self.open.len() > MAX_NESTING {
            return Err(syntax_error::too_deeply_nested(Span::new(
                self.file,
                at,
                at + 1,
            )));
        }
        Ok(())
    }

    /// Text the grammar accepted but this lexer does not know: a bug, reported, not panicked.
    fn unexpected(&self, at: usize) -> Diagnostic {
        let end = self.text[at..]
            .chars()
            .next()
            .map_or(at, |c| at + c.len_utf8());
        Diagnostic::error(
            "E0001",
            "the formatter could not read this (an internal error); the file is unchanged",
        )
        .primary(Span::new(self.file, at, end), "here")
        .help("please report this file")
    }
}

/// The kind of a token the grammar names by a rule; `None` for rules that hold tokens.
fn token_kind(rule: Rule) -> Option<TokenKind> {
    Some(match rule {
        Rule::string | Rule::triple_string => TokenKind::Str,
        // The bracket is the one it closes, known once the opener has been seen.
        Rule::rbrace | Rule::rparen | Rule::rbracket => TokenKind::Close(Bracket::Brace),
        Rule::langle | Rule::rangle => TokenKind::Angle,
        Rule::colon => TokenKind::Colon,
        Rule::equals => TokenKind::Equals,
        Rule::comma => TokenKind::Comma,
        Rule::compare_op => TokenKind::Operator,
        Rule::ident
        | Rule::path
        | Rule::number_like
        | Rule::kw_import
        | Rule::kw_as
        | Rule::kw_template
        | Rule::kw_pipeline
        | Rule::kw_run
        | Rule::kw_require
        | Rule::kw_warn
        | Rule::kw_when
        | Rule::kw_for
        | Rule::kw_probe
        | Rule::kw_every
        | Rule::kw_list
        | Rule::kw_not
        | Rule::when_kind
        | Rule::bool_op
        | Rule::scalar_type => TokenKind::Word,
        _ => return None,
    })
}
