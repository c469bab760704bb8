//! The spanned syntax tree of one `.pipe` file. It is deliberately generic inside blocks
//! (attributes, statements, nested blocks): which keys a block accepts is the checker's job,
//! so an unknown key is a precise E0103 rather than a syntax error.

use crate::diagnostics::Span;

/// A parsed file: its imports, templates, and pipelines (the checker rejects more than one).
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub imports: Vec<Import>,
    pub templates: Vec<Template>,
    pub pipelines: Vec<Pipeline>,
    /// Regions a syntax error made the parser skip or repair: checks about what they held
    /// would only repeat the syntax error.
    pub recovered: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `import "std/rust" as rust`
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub path: String,
    pub path_span: Span,
    pub alias: Option<Ident>,
    pub span: Span,
}

/// `template cargo(task: string, timeout: duration = 15m) { … }` — a job body with parameters.
/// `doc` is the `//` comment block directly above it, for documentation and the LSP.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
    pub doc: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub span: Span,
}

/// A written type: `string`, `percent`, `list<string>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    pub ty: Type,
    pub span: Span,
}

/// The value types of SPEC §4 (references are resolved by the checker, not typed here).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    String,
    Number,
    Bool,
    Duration,
    Percent,
    List(Box<Type>),
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::String => write!(f, "string"),
            Type::Number => write!(f, "number"),
            Type::Bool => write!(f, "bool"),
            Type::Duration => write!(f, "duration"),
            Type::Percent => write!(f, "percent"),
            Type::List(inner) => write!(f, "list<{inner}>"),
        }
    }
}

/// `pipeline api { … }`
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// One statement inside any block.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `key = value`
    Attr(Attr),
    /// `run "cargo test"`
    Run(StrLit),
    /// `require EXPR` (gates)
    Require(Expr),
    /// `warn EXPR` (gates)
    Warn(Expr),
    /// `rollback when EXPR [for D]` and `warn when EXPR [for D]` (watch)
    When(Box<WhenStmt>),
    /// `probe NAME: TYPE = command("…") every 5s` (watch)
    Probe(Box<Probe>),
    /// `NAME: TYPE` (inside `outputs { … }`)
    Field(Field),
    /// Any keyword-introduced block: `job x { }`, `deploy { }`, `watch 2m { }`, `rollout canary { }`,
    /// `job lint = cargo(task: "clippy") { … }`.
    Block(Box<Block>),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Attr(a) => a.span,
            Stmt::Run(s) => s.span,
            Stmt::Require(e) | Stmt::Warn(e) => e.span,
            Stmt::When(w) => w.span,
            Stmt::Probe(p) => p.span,
            Stmt::Field(f) => f.span,
            Stmt::Block(b) => b.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenKind {
    Rollback,
    Warn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhenStmt {
    pub kind: WhenKind,
    pub condition: Expr,
    /// `for D`: the condition must hold over at least this window.
    pub window: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: Ident,
    pub ty: TypeExpr,
    /// Normally `command("…")`; kept as an expression so the checker can say what is wrong.
    pub source: Expr,
    /// `every D`
    pub every: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

/// A keyword block. `keyword` is the word that opens it (`job`, `deploy`, `watch`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub keyword: Ident,
    /// `job NAME`, `promote NAME`, `rollout canary` (strategy as the name).
    pub name: Option<Ident>,
    /// `watch 2m`: a literal argument after the keyword.
    pub arg: Option<Expr>,
    /// `job lint = cargo(task: "…")`: a template instantiation.
    pub template: Option<Call>,
    /// The `{ … }` body; `None` for `job x = tpl(...)` without a trailing block.
    pub body: Option<Vec<Stmt>>,
    pub span: Span,
}

/// A string literal, split into literal text and `${{ expr }}` segments.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub segments: Vec<Segment>,
    pub span: Span,
}

impl StrLit {
    /// The literal text when the string has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Interp(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Literal text, escapes already processed (and `"""` strings dedented).
    Text(String),
    /// `${{ expr }}`; the expression carries its own span.
    Interp(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Str(StrLit),
    Number(f64),
    Bool(bool),
    /// Milliseconds.
    Duration(u64),
    /// Percent points, 0 to 100.
    Percent(f64),
    /// `git.branch`, `jobs.test.outputs.coverage`, `staging`, `expand`.
    Path(Vec<Ident>),
    List(Vec<Expr>),
    Call(Call),
    Not(Box<Expr>),
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    #[serde(rename = "and")]
    And,
    #[serde(rename = "or")]
    Or,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
        }
    }

    pub fn is_comparison(self) -> bool {
        !matches!(self, BinaryOp::And | BinaryOp::Or)
    }
}

/// `cargo(task: "clippy")`, `rust.cargo(…)`, `env("TOKEN")`, `command("…")`.
/// Arguments are positional (`env("X")`) or named (`task: "x"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub callee: Vec<Ident>,
    pub args: Vec<Arg>,
    pub span: Span,
}

impl Call {
    /// The dotted callee name (`rust.cargo`).
    pub fn name(&self) -> String {
        self.callee
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }

    pub fn callee_span(&self) -> Span {
        match (self.callee.first(), self.callee.last()) {
            (Some(first), Some(last)) => first.span.to(last.span),
            _ => self.span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}
