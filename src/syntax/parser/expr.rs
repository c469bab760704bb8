//! Lowering of expressions, calls and string literals. The grammar's `expr` is flat (operators
//! and operands as siblings); precedence (`or` < `and` < `not` < comparison) is applied here.

use pest::iterators::Pair;
use std::iter::Peekable;

use super::dedent::{RawPiece, dedent};
use super::literal::{self, NumberLiteral};
use super::{LowerError, Lowered, Lowerer, MAX_NESTING, Rule, children};
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::{Arg, BinaryOp, Call, Expr, ExprKind, Ident, Segment, StrLit};

const UNTERMINATED_INTERP_HELP: &str = "close the interpolation with `}}`, e.g. \"${{ git.short_sha }}\"; a bare $VAR or ${VAR} is left to the shell";

fn binary(op: BinaryOp, op_span: Span, lhs: Expr, rhs: Expr) -> Expr {
    Expr {
        span: lhs.span.to(rhs.span),
        kind: ExprKind::Binary {
            op,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    }
}

/// `true` and `false` are keywords only as a whole value, so they arrive as one-word paths.
fn is_bool_word(path: &[Ident]) -> bool {
    matches!(path, [word] if word.name == "true" || word.name == "false")
}

fn compare_op(symbol: &str) -> Option<BinaryOp> {
    Some(match symbol {
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        _ => return None,
    })
}

impl<'t> Lowerer<'t> {
    pub(super) fn expr(&mut self, pair: Pair<'t, Rule>) -> Lowered<Expr> {
        if pair.as_rule() != Rule::expr {
            return Err(self.shape_error(&pair));
        }
        self.nested(&pair, |this| this.flat_expr(pair.clone()))
    }

    /// `negation ((and | or) negation)*`, `and` binding tighter than `or`, both to the left.
    fn flat_expr(&mut self, pair: Pair<'t, Rule>) -> Lowered<Expr> {
        // Only for error labels, so pest's own (possibly whitespace-padded) span will do.
        let span = Span::new(self.file, pair.as_span().start(), pair.as_span().end());
        let mut tokens = children(pair).peekable();
        let mut operators = 0;
        let mut disjunction: Option<(Expr, Span)> = None;
        let mut conjunction = self.negation(&mut tokens, span, &mut operators)?;
        while let Some(operator) = tokens.next() {
            let op_span = self.span(&operator);
            let rhs = self.negation(&mut tokens, span, &mut operators)?;
            operators += 1;
            if operators > MAX_NESTING {
                return Err(LowerError::TooDeep(op_span));
            }
            if operator.as_str() == "and" {
                conjunction = binary(BinaryOp::And, op_span, conjunction, rhs);
                continue;
            }
            let finished = match disjunction.take() {
                None => conjunction,
                Some((lhs, or_span)) => binary(BinaryOp::Or, or_span, lhs, conjunction),
            };
            disjunction = Some((finished, op_span));
            conjunction = rhs;
        }
        Ok(match disjunction {
            None => conjunction,
            Some((lhs, or_span)) => binary(BinaryOp::Or, or_span, lhs, conjunction),
        })
    }

    /// `not* operand (compare_op operand)?`
    fn negation(
        &mut self,
        tokens: &mut Peekable<impl Iterator<Item = Pair<'t, Rule>>>,
        expr_span: Span,
        operators: &mut usize,
    ) -> Lowered<Expr> {
        let mut nots = Vec::new();
        while let Some(not) = tokens.next_if(|token| token.as_rule() == Rule::kw_not) {
            nots.push(self.span(&not));
        }
        *operators += nots.len();
        if *operators > MAX_NESTING {
            return Err(LowerError::TooDeep(expr_span));
        }
        let mut result = self.next_operand(tokens, expr_span)?;
        if let Some(op) = tokens.next_if(|token| token.as_rule() == Rule::compare_op) {
            let op_span = self.span(&op);
            let kind = compare_op(op.as_str()).ok_or(LowerError::Shape(op_span))?;
            let rhs = self.next_operand(tokens, op_span)?;
            result = binary(kind, op_span, result, rhs);
        }
        for not_span in nots.into_iter().rev() {
            result = Expr {
                span: not_span.to(result.span),
                kind: ExprKind::Not(Box::new(result)),
            };
        }
        Ok(result)
    }

    /// The next operand; a path followed by its call arguments is one operand, a call.
    fn next_operand(
        &mut self,
        tokens: &mut Peekable<impl Iterator<Item = Pair<'t, Rule>>>,
        span: Span,
    ) -> Lowered<Expr> {
        let operand = tokens.next().ok_or(LowerError::Shape(span))?;
        if operand.as_rule() != Rule::path {
            return self.operand(operand);
        }
        let args = tokens.next_if(|token| token.as_rule() == Rule::call_args);
        let span = match &args {
            Some(args) => self.span(&operand).to(self.span(args)),
            None => self.span(&operand),
        };
        let kind = self.reference(&operand, args, span)?;
        Ok(Expr { kind, span })
    }

    /// A parenthesised expression, list, literal or path.
    pub(super) fn operand(&mut self, pair: Pair<'t, Rule>) -> Lowered<Expr> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::paren => {
                let inner = children(pair.clone())
                    .next()
                    .ok_or_else(|| self.shape_error(&pair))?;
                return Ok(Expr {
                    span,
                    ..self.expr(inner)?
                });
            }
            Rule::list => {
                let elements = children(pair).map(|element| self.expr(element));
                ExprKind::List(elements.collect::<Lowered<_>>()?)
            }
            Rule::path => self.reference(&pair, None, span)?,
            Rule::number_like => self.number(&pair),
            Rule::string | Rule::triple_string => ExprKind::Str(self.string_lit(pair)?),
            _ => return Err(self.shape_error(&pair)),
        };
        Ok(Expr { kind, span })
    }

    /// `a.b.c` is a path; with `( … )` after it, a call (`span` covers both).
    fn reference(
        &mut self,
        path: &Pair<'t, Rule>,
        args: Option<Pair<'t, Rule>>,
        span: Span,
    ) -> Lowered<ExprKind> {
        let callee = self.path(path);
        let args = match args {
            Some(args) => Some(self.call_args(args)?),
            None => None,
        };
        Ok(match args {
            None if is_bool_word(&callee) => {
                ExprKind::Bool(callee.iter().any(|word| word.name == "true"))
            }
            None => ExprKind::Path(callee),
            Some(args) => ExprKind::Call(Call { callee, args, span }),
        })
    }

    /// The words of a dotted `path` token, each with its own span.
    fn path(&self, pair: &Pair<'t, Rule>) -> Vec<Ident> {
        let mut start = pair.as_span().start();
        pair.as_str()
            .split('.')
            .map(|word| {
                let ident = Ident {
                    name: word.to_string(),
                    span: Span::new(self.file, start, start + word.len()),
                };
                start += word.len() + 1;
                ident
            })
            .collect()
    }

    /// `rust.cargo(task: "x")` after `job NAME =`.
    pub(super) fn call(&mut self, pair: Pair<'t, Rule>) -> Lowered<Call> {
        let span = self.span(&pair);
        let mut parts = children(pair.clone());
        let path = self.expect(&pair, &mut parts, Rule::path)?;
        let args = self.expect(&pair, &mut parts, Rule::call_args)?;
        match self.reference(&path, Some(args), span)? {
            ExprKind::Call(call) => Ok(call),
            _ => Err(self.shape_error(&pair)),
        }
    }

    fn call_args(&mut self, pair: Pair<'t, Rule>) -> Lowered<Vec<Arg>> {
        self.nested(&pair, |this| {
            children(pair.clone()).map(|arg| this.arg(arg)).collect()
        })
    }

    fn arg(&mut self, pair: Pair<'t, Rule>) -> Lowered<Arg> {
        let span = self.span(&pair);
        let mut name = None;
        let mut value = None;
        for part in children(pair) {
            match part.as_rule() {
                Rule::ident => name = Some(self.ident(&part)),
                _ => value = Some(self.expr(part)?),
            }
        }
        let value = value.ok_or(LowerError::Shape(span))?;
        Ok(Arg { name, value, span })
    }

    /// A `number_like` token; a bad one is reported (E0002) and lowered as a placeholder.
    fn number(&mut self, pair: &Pair<'t, Rule>) -> ExprKind {
        let literal = literal::classify_number(pair.as_str()).unwrap_or_else(|error| {
            self.diagnostics.push(
                Diagnostic::error("E0002", format!("invalid literal: {}", error.message))
                    .primary(self.span(pair), "invalid literal")
                    .help(error.help),
            );
            error.placeholder
        });
        match literal {
            NumberLiteral::Number(value) => ExprKind::Number(value),
            NumberLiteral::Duration(millis) => ExprKind::Duration(millis),
            NumberLiteral::Percent(points) => ExprKind::Percent(points),
        }
    }

    pub(super) fn string_lit(&mut self, pair: Pair<'t, Rule>) -> Lowered<StrLit> {
        let span = self.span(&pair);
        let segments = match pair.as_rule() {
            Rule::string => self.plain_string(pair)?,
            Rule::triple_string => self.triple_string(pair)?,
            _ => return Err(self.shape_error(&pair)),
        };
        Ok(StrLit { segments, span })
    }

    /// `"…"`: escapes decoded, interpolations lowered.
    fn plain_string(&mut self, pair: Pair<'t, Rule>) -> Lowered<Vec<Segment>> {
        let span = self.span(&pair);
        let mut segments = Vec::new();
        let mut text = String::new();
        let (start, end) = (pair.as_span().start(), pair.as_span().end());
        let mut pieces_end = start + 1; // after the opening quote
        for piece in pair.into_inner() {
            pieces_end = piece.as_span().end();
            match piece.as_rule() {
                Rule::string_text => text.push_str(piece.as_str()),
                Rule::escape => match literal::decode_escape(piece.as_str()) {
                    Ok(decoded) => text.push(decoded),
                    Err(message) => {
                        self.invalid_literal(&piece, message, literal::ESCAPE_HELP);
                        text.push_str(piece.as_str());
                    }
                },
                Rule::interp => {
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Interp(self.interp(piece)?));
                }
                Rule::open_interp => {
                    self.unterminated_interp(&piece);
                    text.push_str(piece.as_str());
                }
                _ => return Err(self.shape_error(&piece)),
            }
        }
        // Only the closing quote can follow the last piece.
        if end == pieces_end {
            self.diagnostics.push(
                Diagnostic::error("E0002", "invalid literal: unterminated string")
                    .primary(span, "this string is never closed")
                    .help(
                        "close it with `\"` on the same line; for text over several lines \
                         use a \"\"\"…\"\"\" string",
                    ),
            );
        }
        if !text.is_empty() || segments.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(segments)
    }

    /// `"""…"""`: no escapes, dedented.
    fn triple_string(&mut self, pair: Pair<'t, Rule>) -> Lowered<Vec<Segment>> {
        let span = self.span(&pair);
        let mut pieces = Vec::new();
        let (start, end) = (pair.as_span().start(), pair.as_span().end());
        let mut pieces_end = start + 3; // after the opening quotes
        for piece in pair.into_inner() {
            pieces_end = piece.as_span().end();
            match piece.as_rule() {
                Rule::triple_text => pieces.push(RawPiece::Text(piece.as_str())),
                Rule::interp => pieces.push(RawPiece::Interp(self.interp(piece)?)),
                Rule::open_triple_interp => {
                    self.unterminated_interp(&piece);
                    pieces.push(RawPiece::Text(piece.as_str()));
                }
                _ => return Err(self.shape_error(&piece)),
            }
        }
        // Only the closing quotes can follow the last piece.
        if end == pieces_end {
            self.diagnostics.push(
                Diagnostic::error("E0002", "invalid literal: unterminated `\"\"\"` string")
                    .primary(span, "this string runs to the end of the file")
                    .help("close it with `\"\"\"`"),
            );
        }
        Ok(dedent(pieces))
    }

    fn interp(&mut self, pair: Pair<'t, Rule>) -> Lowered<Expr> {
        let inner = children(pair.clone())
            .find(|child| child.as_rule() == Rule::expr)
            .ok_or_else(|| self.shape_error(&pair))?;
        self.expr(inner)
    }

    fn unterminated_interp(&mut self, pair: &Pair<'t, Rule>) {
        let span = self.span(pair);
        let opening = Span::new(span.file, span.start as usize, span.start as usize + 3);
        self.diagnostics.push(
            Diagnostic::error("E0002", "invalid literal: unterminated `${{` interpolation")
                .primary(opening, "this `${{` has no matching `}}`")
                .help(UNTERMINATED_INTERP_HELP),
        );
    }

    fn invalid_literal(&mut self, pair: &Pair<'t, Rule>, message: String, help: &'static str) {
        self.diagnostics.push(
            Diagnostic::error("E0002", format!("invalid literal: {message}"))
                .primary(self.span(pair), "invalid literal")
                .help(help),
        );
    }
}
