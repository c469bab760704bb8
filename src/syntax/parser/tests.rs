//! Tests of the grammar and its lowering, rule family by rule family: literals, strings,
//! expressions, statements and blocks, items, the SPEC §2 example, E0001, E0002, robustness.

use super::parse;
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::{Block, Expr, ExprKind, Module, Segment, Stmt, StrLit, Type, WhenKind};

// ---------------------------------------------------------------------------------------------
// Helpers

fn parse_clean(source: &str) -> Module {
    let (module, diagnostics) = parse(0, source);
    assert!(
        diagnostics.is_empty(),
        "unexpected diagnostics for {source:?}: {diagnostics:#?}"
    );
    module
}

/// The statements of `pipeline p { BODY }`.
fn body(statements: &str) -> Vec<Stmt> {
    let mut module = parse_clean(&format!("pipeline p {{\n{statements}\n}}"));
    assert_eq!(module.pipelines.len(), 1);
    module.pipelines.remove(0).body
}

fn only_stmt(statements: &str) -> Stmt {
    let mut stmts = body(statements);
    assert_eq!(stmts.len(), 1, "{stmts:#?}");
    stmts.remove(0)
}

/// The value of `x = EXPR`.
fn value(expr: &str) -> Expr {
    match only_stmt(&format!("x = {expr}")) {
        Stmt::Attr(attr) => attr.value,
        other => panic!("expected an attribute, got {other:?}"),
    }
}

fn block(stmt: Stmt) -> Block {
    match stmt {
        Stmt::Block(block) => *block,
        other => panic!("expected a block, got {other:?}"),
    }
}

fn string(expr: Expr) -> StrLit {
    match expr.kind {
        ExprKind::Str(literal) => literal,
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The source text a span covers.
fn text(source: &str, span: Span) -> &str {
    &source[span.start as usize..span.end as usize]
}

/// A compact, parenthesised rendering that shows how an expression was grouped.
fn show(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(literal) => format!("{:?}", literal.as_plain().unwrap_or_default()),
        ExprKind::Number(n) => format!("{n}"),
        ExprKind::Bool(b) => format!("{b}"),
        ExprKind::Duration(ms) => format!("{ms}ms"),
        ExprKind::Percent(p) => format!("{p}%"),
        ExprKind::Path(words) => words
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        ExprKind::List(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(" "))
        }
        ExprKind::Call(call) => {
            let args: Vec<String> = call
                .args
                .iter()
                .map(|arg| match &arg.name {
                    Some(name) => format!("{}: {}", name.name, show(&arg.value)),
                    None => show(&arg.value),
                })
                .collect();
            format!("{}({})", call.name(), args.join(", "))
        }
        ExprKind::Not(inner) => format!("(not {})", show(inner)),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", op.symbol(), show(lhs), show(rhs))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Literals

#[test]
fn duration_literals_become_milliseconds() {
    let cases = [
        ("250ms", 250),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("7d", 604_800_000),
        ("1h30m", 5_400_000),
        ("2m30s", 150_000),
    ];
    for (literal, millis) in cases {
        assert_eq!(value(literal).kind, ExprKind::Duration(millis), "{literal}");
    }
}

#[test]
fn number_percent_and_bool_literals() {
    assert_eq!(value("42").kind, ExprKind::Number(42.0));
    assert_eq!(value("3.5").kind, ExprKind::Number(3.5));
    assert_eq!(value("1%").kind, ExprKind::Percent(1.0));
    assert_eq!(value("99.9%").kind, ExprKind::Percent(99.9));
    assert_eq!(value("100%").kind, ExprKind::Percent(100.0));
    assert_eq!(value("true").kind, ExprKind::Bool(true));
    assert_eq!(value("false").kind, ExprKind::Bool(false));
    assert_eq!(show(&value("trueish")), "trueish");
}

#[test]
fn literal_spans_cover_the_token() {
    let source = "pipeline p { x = 1h30m }";
    let module = parse_clean(source);
    let Stmt::Attr(attr) = &module.pipelines[0].body[0] else {
        panic!("expected an attribute");
    };
    assert_eq!(text(source, attr.value.span), "1h30m");
    assert_eq!(text(source, attr.key.span), "x");
    assert_eq!(text(source, attr.span), "x = 1h30m");
}

// ---------------------------------------------------------------------------------------------
// Strings

#[test]
fn string_escapes_are_decoded() {
    let literal = string(value(r#""a\"b\\c\nd\te\u{41}\u{1F600}""#));
    assert_eq!(literal.as_plain().unwrap(), "a\"b\\c\nd\teA😀");
}

#[test]
fn bare_dollar_variables_stay_literal() {
    let literal = string(value(r#""echo $HOME ${USER} $ {{x}}""#));
    assert_eq!(literal.as_plain().unwrap(), "echo $HOME ${USER} $ {{x}}");
}

#[test]
fn interpolations_become_segments_with_their_own_spans() {
    let source = r#"pipeline p { run "deploy ${{ artifact.path }} to ${{env.url}}!" }"#;
    let module = parse_clean(source);
    let Stmt::Run(command) = &module.pipelines[0].body[0] else {
        panic!("expected run");
    };
    assert_eq!(command.segments.len(), 5, "{:#?}", command.segments);
    assert_eq!(command.segments[0], Segment::Text("deploy ".to_string()));
    let Segment::Interp(path) = &command.segments[1] else {
        panic!("expected an interpolation");
    };
    assert_eq!(show(path), "artifact.path");
    assert_eq!(text(source, path.span), "artifact.path");
    let Segment::Interp(url) = &command.segments[3] else {
        panic!("expected an interpolation");
    };
    assert_eq!(text(source, url.span), "env.url");
    assert_eq!(command.segments[4], Segment::Text("!".to_string()));
    assert_eq!(command.as_plain(), None);
}

#[test]
fn interpolations_hold_whole_expressions_with_nested_strings() {
    let literal = string(value(r#""${{ git.branch == "main" and not x }}""#));
    let [Segment::Interp(expr)] = literal.segments.as_slice() else {
        panic!("expected one interpolation: {:#?}", literal.segments);
    };
    assert_eq!(show(expr), r#"(and (== git.branch "main") (not x))"#);
}

#[test]
fn triple_quoted_strings_are_dedented() {
    let source = "pipeline p {\n  run \"\"\"\n    set -e\n      echo \"hi\" \\n\n\n    echo ${{ env.url }} done\n    \"\"\"\n}";
    let module = parse_clean(source);
    let Stmt::Run(command) = &module.pipelines[0].body[0] else {
        panic!("expected run");
    };
    let Segment::Text(first) = &command.segments[0] else {
        panic!("expected text first");
    };
    assert_eq!(first, "set -e\n  echo \"hi\" \\n\n\necho ");
    let Segment::Interp(url) = &command.segments[1] else {
        panic!("expected an interpolation");
    };
    assert_eq!(text(source, url.span), "env.url");
    assert_eq!(command.segments[2], Segment::Text(" done".to_string()));
}

#[test]
fn triple_quoted_string_on_one_line_and_empty_strings() {
    assert_eq!(
        string(value(r#""""a "quoted" b""""#)).as_plain().unwrap(),
        "a \"quoted\" b"
    );
    assert_eq!(string(value(r#""""#)).as_plain().unwrap(), "");
    assert_eq!(string(value(r#""""""""#)).as_plain().unwrap(), "");
}

// ---------------------------------------------------------------------------------------------
// Expressions

#[test]
fn precedence_or_and_not_comparison() {
    assert_eq!(
        show(&value("not a and b or c == d")),
        "(or (and (not a) b) (== c d))"
    );
    assert_eq!(show(&value("a or b and c")), "(or a (and b c))");
    assert_eq!(show(&value("a and b and c")), "(and (and a b) c)");
    assert_eq!(show(&value("a or b or c")), "(or (or a b) c)");
    assert_eq!(show(&value("not a == b")), "(not (== a b))");
    assert_eq!(show(&value("not not a")), "(not (not a))");
    assert_eq!(show(&value("(a or b) and c")), "(and (or a b) c)");
    assert_eq!(show(&value("not (a and b)")), "(not (and a b))");
}

#[test]
fn every_comparison_operator_with_its_span() {
    for symbol in ["==", "!=", "<", "<=", ">", ">="] {
        let source = format!("pipeline p {{ x = a {symbol} 5m }}");
        let module = parse_clean(&source);
        let Stmt::Attr(attr) = &module.pipelines[0].body[0] else {
            panic!("expected an attribute");
        };
        let ExprKind::Binary { op, op_span, .. } = &attr.value.kind else {
            panic!("expected a comparison for {symbol}");
        };
        assert_eq!(op.symbol(), symbol);
        assert_eq!(text(&source, *op_span), symbol);
        assert_eq!(text(&source, attr.value.span), format!("a {symbol} 5m"));
    }
}

#[test]
fn and_or_operator_spans() {
    let source = "pipeline p { x = a and b or c }";
    let module = parse_clean(source);
    let Stmt::Attr(attr) = &module.pipelines[0].body[0] else {
        panic!("expected an attribute");
    };
    let ExprKind::Binary { op_span, lhs, .. } = &attr.value.kind else {
        panic!("expected or");
    };
    assert_eq!(text(source, *op_span), "or");
    let ExprKind::Binary { op_span, .. } = &lhs.kind else {
        panic!("expected and");
    };
    assert_eq!(text(source, *op_span), "and");
}

#[test]
fn paths_calls_and_lists() {
    assert_eq!(
        show(&value("jobs.test.outputs.coverage")),
        "jobs.test.outputs.coverage"
    );
    assert_eq!(
        show(&value("jobs.build-x.succeeded")),
        "jobs.build-x.succeeded"
    );
    assert_eq!(show(&value(r#"env("X")"#)), r#"env("X")"#);
    assert_eq!(show(&value(r#"file("p")"#)), r#"file("p")"#);
    assert_eq!(
        show(&value(r#"cargo(task: "x", timeout: 5m,)"#)),
        r#"cargo(task: "x", timeout: 300000ms)"#
    );
    assert_eq!(show(&value("f()")), "f()");
    assert_eq!(show(&value("[a, b,]")), "[a b]");
    assert_eq!(show(&value("[]")), "[]");
    assert_eq!(show(&value("[10%, 50%, 100%]")), "[10% 50% 100%]");
    assert_eq!(show(&value(r#"[["a"], [1, 2]]"#)), r#"[["a"] [1 2]]"#);
}

#[test]
fn path_words_have_their_own_spans() {
    let source = "pipeline p { x = jobs.test.succeeded }";
    let module = parse_clean(source);
    let Stmt::Attr(attr) = &module.pipelines[0].body[0] else {
        panic!("expected an attribute");
    };
    let ExprKind::Path(words) = &attr.value.kind else {
        panic!("expected a path");
    };
    let spans: Vec<&str> = words.iter().map(|w| text(source, w.span)).collect();
    assert_eq!(spans, ["jobs", "test", "succeeded"]);
}

#[test]
fn keywords_are_only_keywords_where_expected() {
    assert_eq!(show(&value("android or ornament")), "(or android ornament)");
    assert_eq!(show(&value("notify and order")), "(and notify order)");
    assert_eq!(show(&value("a-b")), "a-b");
    let deploy = block(only_stmt("job deploy { run \"x\" }"));
    assert_eq!(deploy.name.unwrap().name, "deploy");
    let staging = block(only_stmt("promote staging { }"));
    assert_eq!(staging.keyword.name, "promote");
    assert_eq!(staging.name.unwrap().name, "staging");
    assert!(matches!(only_stmt("runner = 1"), Stmt::Attr(_)));
    assert!(matches!(only_stmt("run = 1"), Stmt::Attr(_)));
    assert!(matches!(only_stmt("rollback_when = 1"), Stmt::Attr(_)));
}

// ---------------------------------------------------------------------------------------------
// Statements and blocks

#[test]
fn attribute_run_require_and_warn() {
    let stmts = body(
        "timeout = 10m\nrun \"cargo test\"\nrequire jobs.lint.succeeded\nwarn jobs.test.duration < 5m",
    );
    assert!(matches!(&stmts[0], Stmt::Attr(a) if a.key.name == "timeout"));
    assert!(matches!(&stmts[1], Stmt::Run(s) if s.as_plain().as_deref() == Some("cargo test")));
    assert!(matches!(&stmts[2], Stmt::Require(e) if show(e) == "jobs.lint.succeeded"));
    assert!(matches!(&stmts[3], Stmt::Warn(e) if show(e) == "(< jobs.test.duration 300000ms)"));
}

#[test]
fn rollback_when_and_warn_when() {
    let stmts = body(
        "rollback when error_rate > 1% for 30s\nwarn when p95 > 500ms\nrollback when not healthy for 15s\nrollback { run \"x\" }",
    );
    let Stmt::When(first) = &stmts[0] else {
        panic!("expected a when: {:?}", stmts[0]);
    };
    assert_eq!(first.kind, WhenKind::Rollback);
    assert_eq!(show(&first.condition), "(> error_rate 1%)");
    assert_eq!(first.window.as_ref().map(show).as_deref(), Some("30000ms"));
    let Stmt::When(second) = &stmts[1] else {
        panic!("expected a when: {:?}", stmts[1]);
    };
    assert_eq!(second.kind, WhenKind::Warn);
    assert_eq!(second.window, None);
    let Stmt::When(third) = &stmts[2] else {
        panic!("expected a when");
    };
    assert_eq!(show(&third.condition), "(not healthy)");
    let rollback = block(stmts[3].clone());
    assert_eq!(rollback.keyword.name, "rollback");
    assert_eq!(rollback.body.map(|b| b.len()), Some(1));
}

#[test]
fn probes() {
    let source = "pipeline p { watch 2m {\n  probe error_rate: percent = command(\"./rate.sh ${{ env.url }}\") every 5s\n  probe up: bool = command(\"x\")\n} }";
    let module = parse_clean(source);
    let watch = block(module.pipelines[0].body[0].clone());
    assert_eq!(watch.keyword.name, "watch");
    assert_eq!(watch.arg.as_ref().map(show).as_deref(), Some("120000ms"));
    let stmts = watch.body.unwrap();
    let Stmt::Probe(rate) = &stmts[0] else {
        panic!("expected a probe");
    };
    assert_eq!(rate.name.name, "error_rate");
    assert_eq!(rate.ty.ty, Type::Percent);
    assert!(matches!(&rate.source.kind, ExprKind::Call(call) if call.name() == "command"));
    assert_eq!(rate.every.as_ref().map(show).as_deref(), Some("5000ms"));
    assert!(text(source, rate.span).starts_with("probe error_rate"));
    assert!(text(source, rate.span).ends_with("every 5s"));
    let Stmt::Probe(up) = &stmts[1] else {
        panic!("expected a probe");
    };
    assert_eq!(up.every, None);
}

#[test]
fn output_fields_with_and_without_commas() {
    let outputs = block(only_stmt(
        "outputs { coverage: percent, count: number\n names: list<string>; ok: bool }",
    ));
    let fields: Vec<(String, Type)> = outputs
        .body
        .unwrap()
        .into_iter()
        .map(|stmt| match stmt {
            Stmt::Field(field) => (field.name.name, field.ty.ty),
            other => panic!("expected a field, got {other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("coverage".to_string(), Type::Percent),
            ("count".to_string(), Type::Number),
            ("names".to_string(), Type::List(Box::new(Type::String))),
            ("ok".to_string(), Type::Bool),
        ]
    );
}

#[test]
fn every_block_form() {
    let stmts = body(
        r#"job test { run "x" }
        job lint = cargo(task: "clippy")
        job fmt = rust.cargo(task: "fmt") { timeout = 1m }
        deploy { run "d" }
        watch 2m { }
        rollout canary { steps = [10%, 100%] }
        env { RUST_BACKTRACE = "1" }
        frobnicate { }"#,
    );
    let blocks: Vec<Block> = stmts.into_iter().map(block).collect();
    assert_eq!(blocks.len(), 8);
    assert_eq!(blocks[0].name.as_ref().unwrap().name, "test");
    assert!(blocks[0].template.is_none());
    let lint = &blocks[1];
    assert_eq!(lint.template.as_ref().unwrap().name(), "cargo");
    assert!(lint.body.is_none());
    let fmt = &blocks[2];
    assert_eq!(fmt.template.as_ref().unwrap().name(), "rust.cargo");
    assert_eq!(
        fmt.template.as_ref().unwrap().args[0]
            .name
            .as_ref()
            .unwrap()
            .name,
        "task"
    );
    assert_eq!(fmt.body.as_ref().map(Vec::len), Some(1));
    assert_eq!(blocks[3].keyword.name, "deploy");
    assert!(blocks[3].name.is_none());
    assert_eq!(
        blocks[4].arg.as_ref().map(show).as_deref(),
        Some("120000ms")
    );
    assert_eq!(blocks[5].name.as_ref().unwrap().name, "canary");
    assert_eq!(blocks[6].keyword.name, "env");
    assert_eq!(blocks[7].keyword.name, "frobnicate");
}

#[test]
fn block_spans_end_at_their_last_token() {
    let source = "pipeline p {\n  job lint = cargo(task: \"x\")   // trailing\n  job b { }\n}";
    let module = parse_clean(source);
    let lint = block(module.pipelines[0].body[0].clone());
    assert_eq!(text(source, lint.span), "job lint = cargo(task: \"x\")");
    assert_eq!(text(source, lint.template.unwrap().callee_span()), "cargo");
}

#[test]
fn optional_semicolons_and_insignificant_newlines() {
    let stmts = body("a = 1; b = 2;\n\n c\n =\n 3 run \"x\"; d = [\n 1,\n 2\n ]");
    assert_eq!(stmts.len(), 5);
}

#[test]
fn comments_anywhere() {
    let stmts = body(
        "// line\n a = /* inline */ 1 // after\n /* multi\n line */ b = [1, /* c */ 2]\n c = \"// not a comment\"",
    );
    assert_eq!(stmts.len(), 3);
    let Stmt::Attr(c) = &stmts[2] else {
        panic!("expected an attribute");
    };
    assert_eq!(show(&c.value), "\"// not a comment\"");
}

// ---------------------------------------------------------------------------------------------
// Items

#[test]
fn imports_templates_and_pipelines() {
    let source = r#"
import "std/rust"
import "./ci/common.pipe" as common

// Runs cargo with a task.
//   Second line, indented.
template cargo(task: string, timeout: duration = 15m, tags: list<string> = [],) {
  run "cargo ${{ task }}"
  timeout = timeout
}

template bare { run "x" }

pipeline one { }
pipeline two { }
"#;
    let module = parse_clean(source);
    assert_eq!(module.imports.len(), 2);
    assert_eq!(module.imports[0].path, "std/rust");
    assert_eq!(text(source, module.imports[0].path_span), "\"std/rust\"");
    assert_eq!(module.imports[0].alias, None);
    assert_eq!(module.imports[1].alias.as_ref().unwrap().name, "common");
    assert_eq!(
        text(source, module.imports[1].span),
        r#"import "./ci/common.pipe" as common"#
    );
    let cargo = &module.templates[0];
    assert_eq!(cargo.name.name, "cargo");
    assert_eq!(
        cargo.doc,
        "Runs cargo with a task.\n  Second line, indented."
    );
    let params: Vec<(&str, String)> = cargo
        .params
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty.ty.to_string()))
        .collect();
    assert_eq!(
        params,
        [
            ("task", "string".to_string()),
            ("timeout", "duration".to_string()),
            ("tags", "list<string>".to_string())
        ]
    );
    assert_eq!(
        cargo.params[1].default.as_ref().map(show).as_deref(),
        Some("900000ms")
    );
    assert_eq!(cargo.body.len(), 2);
    assert_eq!(module.templates[1].doc, "");
    assert!(module.templates[1].params.is_empty());
    assert_eq!(module.pipelines.len(), 2);
}

#[test]
fn doc_comment_needs_to_touch_the_template() {
    let module = parse_clean("// not a doc\n\ntemplate t() { }\n// doc\n template u() { }");
    assert_eq!(module.templates[0].doc, "");
    assert_eq!(module.templates[1].doc, "doc");
}

#[test]
fn empty_and_comment_only_files() {
    for source in [
        "",
        "  \n",
        "// nothing\n/* here */",
        "\u{FEFF}pipeline p { }",
    ] {
        parse_clean(source);
    }
}

// ---------------------------------------------------------------------------------------------
// The whole example of SPEC §2

/// The whole example of SPEC §2, kept as a checked example pipeline.
const SPEC_EXAMPLE: &str = include_str!("../../../examples/rust-service/pipeline.pipe");

/// One line per statement: its kind and name, indented by nesting.
fn outline(stmts: &[Stmt], depth: usize, out: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    for stmt in stmts {
        match stmt {
            Stmt::Attr(attr) => {
                out.push(format!("{indent}{} = {}", attr.key.name, show(&attr.value)))
            }
            Stmt::Run(_) => out.push(format!("{indent}run")),
            Stmt::Require(e) => out.push(format!("{indent}require {}", show(e))),
            Stmt::Warn(e) => out.push(format!("{indent}warn {}", show(e))),
            Stmt::When(w) => out.push(format!(
                "{indent}{:?} when {} for {}",
                w.kind,
                show(&w.condition),
                w.window.as_ref().map(show).unwrap_or_default()
            )),
            Stmt::Probe(p) => out.push(format!("{indent}probe {}: {}", p.name.name, p.ty.ty)),
            Stmt::Field(f) => out.push(format!("{indent}{}: {}", f.name.name, f.ty.ty)),
            Stmt::Block(b) => {
                let mut head = b.keyword.name.clone();
                if let Some(name) = &b.name {
                    head.push_str(&format!(" {}", name.name));
                }
                if let Some(arg) = &b.arg {
                    head.push_str(&format!(" {}", show(arg)));
                }
                if let Some(call) = &b.template {
                    head.push_str(&format!(" = {}(..)", call.name()));
                }
                out.push(format!("{indent}{head}"));
                outline(b.body.as_deref().unwrap_or(&[]), depth + 1, out);
            }
        }
    }
}

#[test]
fn spec_example_parses_into_the_expected_shape() {
    let module = parse_clean(SPEC_EXAMPLE);
    assert_eq!(module.imports.len(), 1);
    assert_eq!(module.imports[0].path, "std/rust");
    assert!(module.templates.is_empty());
    let pipeline = &module.pipelines[0];
    assert_eq!(pipeline.name.name, "api");
    let mut lines = Vec::new();
    outline(&pipeline.body, 0, &mut lines);
    let expected = r#"version = "
env
  RUST_BACKTRACE = "1"
secret deploy_token
  from = env("DEPLOY_TOKEN")
  scope = [staging production]
artifact api_bin
  path = "target/release/api"
environment staging
  url = "http://127.0.0.1:18080"
  replicas = 1
environment production
  url = "http://127.0.0.1:18081"
  replicas = 3
  protected = true
stage build
  job lint = cargo(..)
  job test
    run
    run
    timeout = 600000ms
    retries = 1
    outputs
      coverage: percent
  job package
    needs = [lint test]
    run
    produces = [api_bin]
gate quality
  after = [build]
  require (>= jobs.test.outputs.coverage 80%)
  require jobs.lint.succeeded
  warn (< jobs.test.duration 300000ms)
promote staging
  after = [quality]
  artifact = api_bin
  secrets = [deploy_token]
  deploy
    run
  smoke
    run
    retries = 5
    backoff = 1000ms
  rollback
    run
promote production
  after = [staging]
  artifact = api_bin
  secrets = [deploy_token]
  when = (== git.branch "main")
  approval
    approvers = ["alice" "bob"]
  migrate
    kind = expand
    run
  rollout canary
    steps = [10% 50% 100%]
    pause = 30000ms
  deploy
    run
  smoke
    run
  watch 120000ms
    probe error_rate: percent
    probe p95: duration
    probe healthy: bool
    Rollback when (> error_rate 1%) for 30000ms
    Rollback when (> p95 900ms) for 60000ms
    Rollback when (not healthy) for 15000ms
  rollback
    run
drill restore_db
  environment = staging
  rto = 120000ms
  rpo = 86400000ms
  backup
    run
  restore
    run
  verify
    run"#;
    // `version` is interpolated, so `show` renders it as an empty plain string.
    assert_eq!(
        lines.join("\n"),
        expected.replacen("version = \"", "version = \"\"", 1)
    );
}

#[test]
fn crlf_line_endings_parse_the_same() {
    let crlf = SPEC_EXAMPLE.replace('\n', "\r\n");
    let (mut unix, mut windows) = (Vec::new(), Vec::new());
    outline(&parse_clean(SPEC_EXAMPLE).pipelines[0].body, 0, &mut unix);
    outline(&parse_clean(&crlf).pipelines[0].body, 0, &mut windows);
    assert_eq!(unix, windows);
}

// ---------------------------------------------------------------------------------------------
// E0001: syntax errors

/// The single E0001 for `source`: message, primary label text, the labelled text, help.
fn syntax_error(source: &str) -> (String, String, String, Option<String>) {
    let (_, diagnostics) = parse(0, source);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let diagnostic = &diagnostics[0];
    assert_eq!(diagnostic.code, "E0001");
    let label = diagnostic.labels.iter().find(|l| l.primary).unwrap();
    (
        diagnostic.message.clone(),
        label.text.clone(),
        text(source, label.span).to_string(),
        diagnostic.help.clone(),
    )
}

#[test]
fn missing_closing_brace() {
    let source = "pipeline x {\n  job test {\n    run \"x\"\n";
    let (message, label, _, help) = syntax_error(source);
    assert_eq!(message, "syntax error: this block is never closed");
    assert_eq!(label, "this `{` is never closed");
    assert!(help.unwrap().contains("2 missing `}`"));
    let diagnostic = &parse(0, source).1[0];
    let open = diagnostic.labels.iter().find(|l| l.primary).unwrap();
    assert_eq!(open.span.start, 24, "the `{{` of `job test`");
}

#[test]
fn expected_lists_read_as_words() {
    let cases = [
        (
            "job x { }",
            "expected one of `import`, `template`, or `pipeline`",
            "job",
        ),
        ("pipeline x { job test { run } }", "expected a string", "}"),
        (
            "pipeline x { gate g { require } }",
            "expected an expression",
            "}",
        ),
        ("pipeline x { x = [1, 2 }", "expected `]` or `,`", "}"),
        ("template t(p: strng) { }", "expected a type", "strng"),
        ("pipeline x { run \"${{ x + y }}\" }", "expected `}}`", "+"),
        ("pipeline { }", "expected an identifier", "{"),
        ("import std", "expected a string", "std"),
        (
            "pipeline x { rollback when > 1% }",
            "expected an expression",
            ">",
        ),
    ];
    for (source, expected, found) in cases {
        let (message, label, labelled, _) = syntax_error(source);
        assert_eq!(message, format!("syntax error: {expected}"), "{source}");
        assert_eq!(labelled, found, "{source}");
        assert_eq!(label, format!("found `{found}`"), "{source}");
    }
}

#[test]
fn helps_guess_the_fix() {
    let cases = [
        (
            "pipeline x { gate g { require a < b < c } }",
            "comparisons do not chain",
        ),
        ("pipeline x { gate g { require a && b } }", "write `and`"),
        (
            "pipeline x { rollback when > 1% }",
            "a value is missing before `>`",
        ),
        ("pipeline x { x = > 1 }", "a value is missing before `>`"),
        ("template t(p = 5) { }", "use `:`"),
        ("pipeline x { job l = cargo(task = \"x\") }", "use `:`"),
        ("pipeline x { job t { timeout: 10m } }", "use `=`"),
        ("pipeline x { when = a = b }", "use `==`"),
        (
            "pipeline x { job t { timeout 10m } }",
            "write `timeout = 10m`",
        ),
        (
            "pipeline x { job t { image \"rust:1\" } }",
            "write `image = \"rust:1\"`",
        ),
        ("pipeline x { /* never closed }", "never closed"),
        ("pipline x { }", "did you mean `pipeline`?"),
        (
            "pipeline x { needs = [lint test] }",
            "separate list items with `,`",
        ),
        ("pipeline x { x = f(a b) }", "separate arguments with `,`"),
        ("template t(p: strng) { }", "did you mean `string`?"),
    ];
    for (source, help) in cases {
        let (_, _, _, actual) = syntax_error(source);
        let actual = actual.unwrap_or_default();
        assert!(actual.contains(help), "{source}: help was {actual:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// E0002: invalid literals

/// Every E0002 for `x = LITERAL` inside a pipeline, and the module that still results.
fn invalid_literals(source: &str) -> (Module, Vec<Diagnostic>) {
    let (module, diagnostics) = parse(0, source);
    assert!(
        diagnostics.iter().all(|d| d.code == "E0002"),
        "{diagnostics:#?}"
    );
    (module, diagnostics)
}

#[test]
fn each_invalid_literal_is_reported_and_parsing_carries_on() {
    let cases = [
        (
            "5x",
            "unknown unit `x`",
            "durations are a number followed by ms, s, m, h or d, e.g. 30s or 1h30m",
        ),
        (
            "10mss",
            "unknown unit `mss`",
            "durations are a number followed by ms",
        ),
        (
            "101%",
            "out of range",
            "percentages are a number from 0 to 100",
        ),
        (
            "1.2.3",
            "not a valid number",
            "numbers are written like 42 or 3.5",
        ),
        ("\"a\\qb\"", "unknown escape `\\q`", "the escapes are"),
        ("\"abc", "unterminated string", "close it with `\"`"),
        (
            "\"${{ x \"",
            "unterminated `${{`",
            "close the interpolation with `}}`",
        ),
        ("99999999999999999999999d", "too large", "durations"),
    ];
    for (literal, message, help) in cases {
        let source = format!("pipeline p {{\n  x = {literal}\n  y = 2\n}}\n");
        let (module, diagnostics) = invalid_literals(&source);
        assert_eq!(diagnostics.len(), 1, "{literal}: {diagnostics:#?}");
        let diagnostic = &diagnostics[0];
        assert!(
            diagnostic.message.starts_with("invalid literal: "),
            "{}",
            diagnostic.message
        );
        assert!(
            diagnostic.message.contains(message),
            "{literal}: {}",
            diagnostic.message
        );
        assert!(
            diagnostic.help.as_deref().unwrap_or("").contains(help),
            "{literal}: {:?}",
            diagnostic.help
        );
        let span = diagnostic.main_span().unwrap();
        assert!(!span.is_empty(), "{literal}");
        assert_eq!(module.pipelines.len(), 1, "{literal}");
        assert_eq!(
            module.pipelines[0].body.len(),
            2,
            "{literal}: the rest still parses"
        );
    }
}

#[test]
fn all_invalid_literals_in_a_file_are_reported() {
    let source = "pipeline p {\n  a = 5x\n  b = 10mss\n  c = 101%\n  d = 1.2.3\n  e = \"a\\qb\"\n  f = \"abc\n  g = \"${{ x \"\n  watch 3q { }\n}\n";
    let (module, diagnostics) = invalid_literals(source);
    assert_eq!(diagnostics.len(), 8, "{diagnostics:#?}");
    let labelled: Vec<&str> = diagnostics
        .iter()
        .map(|d| text(source, d.main_span().unwrap()))
        .collect();
    assert_eq!(
        labelled,
        ["5x", "10mss", "101%", "1.2.3", "\\q", "\"abc", "${{", "3q"]
    );
    assert_eq!(module.pipelines[0].body.len(), 8);
    assert_eq!(value_kind(&module, 0), ExprKind::Duration(0));
    assert_eq!(value_kind(&module, 2), ExprKind::Percent(0.0));
    assert_eq!(value_kind(&module, 3), ExprKind::Number(0.0));
}

fn value_kind(module: &Module, index: usize) -> ExprKind {
    match &module.pipelines[0].body[index] {
        Stmt::Attr(attr) => attr.value.kind.clone(),
        other => panic!("expected an attribute, got {other:?}"),
    }
}

#[test]
fn unterminated_triple_quoted_string() {
    // At the end of a file it is E0002 with nothing else wrong…
    let (_, diagnostics) = invalid_literals("pipeline p { }\nimport \"\"\"abc");
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0]
            .message
            .contains("unterminated `\"\"\"` string")
    );
    // …and inside a block the block cannot close, which the syntax error explains.
    let (_, _, _, help) = syntax_error("pipeline p {\n  x = \"\"\"abc\n}\n");
    assert!(help.unwrap().contains("close it with `\"\"\"`"));
}

#[test]
fn import_paths_cannot_interpolate() {
    let (_, diagnostics) = invalid_literals("import \"${{ x }}\"");
    assert_eq!(diagnostics.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Robustness: nothing panics, deep nesting is an error

#[test]
fn deep_nesting_is_a_syntax_error_not_a_crash() {
    for depth in [200, 5_000, 100_000] {
        let parens = format!(
            "pipeline p {{ x = {}a{} }}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        let lists = format!(
            "pipeline p {{ x = {}a{} }}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let blocks = format!(
            "pipeline p {{ {} }}",
            "b {".repeat(depth) + &"}".repeat(depth)
        );
        let types = format!(
            "template t(x: {}string{}) {{ }}",
            "list<".repeat(depth),
            ">".repeat(depth)
        );
        for source in [parens, lists, blocks, types] {
            let (message, ..) = syntax_error(&source);
            assert_eq!(message, "syntax error: too deeply nested", "depth {depth}");
        }
    }
    for operator in ["not ", "a and ", "a or "] {
        let source = format!("pipeline p {{ x = {}a }}", operator.repeat(10_000));
        let (message, ..) = syntax_error(&source);
        assert_eq!(message, "syntax error: too deeply nested", "{operator}");
    }
}

#[test]
fn moderate_nesting_is_fine() {
    let source = format!("pipeline p {{ x = {}a{} }}", "(".repeat(50), ")".repeat(50));
    parse_clean(&source);
}

#[test]
fn huge_numbers_do_not_panic() {
    let source = format!(
        "pipeline p {{ a = {0} b = {0}% c = {0}ms d = {0}.{0} }}",
        "9".repeat(500)
    );
    let (_, diagnostics) = parse(0, &source);
    assert_eq!(diagnostics.len(), 4, "{diagnostics:#?}");
}

mod never_panics {
    use super::{SPEC_EXAMPLE, parse};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn on_arbitrary_text(source in "\\PC{0,200}") {
            let _ = parse(0, &source);
        }

        #[test]
        fn on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(0, &String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn on_pipe_like_tokens(
            tokens in proptest::collection::vec(
                prop::sample::select(vec![
                    "pipeline", "p", "{", "}", "(", ")", "[", "]", "=", ":", ",", ";", "\"",
                    "\"\"\"", "${{", "}}", "not", "and", "or", "==", "<", "5m", "1%", "x.y",
                    "job", "run", "rollback", "when", "for", "probe", "every", "\n", "//", "/*",
                    "*/", "\\", "list<", ">", "template", "import", "-", ".",
                ]),
                0..60,
            )
        ) {
            let _ = parse(0, &tokens.join(" "));
        }

        #[test]
        fn on_mutations_of_the_spec_example(
            edits in proptest::collection::vec((0..SPEC_EXAMPLE.len(), 0..4u8, any::<char>()), 1..6)
        ) {
            let mut source = SPEC_EXAMPLE.to_string();
            for (position, kind, ch) in edits {
                let mut at = position.min(source.len());
                while !source.is_char_boundary(at) {
                    at -= 1;
                }
                match kind {
                    0 => source.insert(at, ch),
                    1 => { if at < source.len() { source.remove(at); } }
                    2 => source.insert_str(at, "${{"),
                    _ => source.truncate(at),
                }
            }
            let (_, diagnostics) = parse(0, &source);
            // Recovery reports each syntax error once, and gives up past a bound.
            let syntax_errors = diagnostics.iter().filter(|d| d.code == "E0001").count();
            prop_assert!(syntax_errors <= 50, "{} syntax errors", syntax_errors);
            for diagnostic in &diagnostics {
                let span = diagnostic.main_span();
                prop_assert!(span.is_some_and(|s| s.end as usize <= source.len()));
            }
        }
    }
}
