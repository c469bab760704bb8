//! The static commands through the real binary, table-style: each test states a pipeline,
//! the arguments, and what must come out (stdout, stderr, exit code).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fluent harness around one temporary directory and one `pipe` invocation.
struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

struct Output {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Test {
    fn new() -> Test {
        Test {
            dir: tempfile::tempdir().unwrap(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn file(self, name: &str, text: &str) -> Test {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn pipeline(self, text: &str) -> Test {
        self.file("pipeline.pipe", text)
    }

    fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipe"));
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        Output {
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    fn expect_exit(&self, code: i32) -> Output {
        let output = self.run();
        assert_eq!(
            output.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            output.stdout, output.stderr
        );
        output
    }
}

const CLEAN: &str = r#"pipeline demo {
  job build { run "echo build" }
  job test  { needs = [build]  run "echo test" }
  gate ok   { require jobs.test.succeeded }
}
"#;

#[test]
fn check_clean_file_exits_zero_and_says_ok() {
    let out = Test::new().pipeline(CLEAN).args(&["check"]).expect_exit(0);
    assert!(out.stderr.contains("ok"), "{}", out.stderr);
}

#[test]
fn check_reports_three_mistakes_at_once() {
    let source = r#"pipeline demo {
  job build { run "echo build"  timout = 5m }
  job test  { needs = [biuld]  run "echo test" }
  gate ok   { require jobs.test.duration > 80% }
}
"#;
    let out = Test::new().pipeline(source).args(&["check"]).expect_exit(2);
    for code in ["E0103", "E0101", "E0201"] {
        assert!(
            out.stderr.contains(code),
            "missing {code} in:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("did you mean `timeout`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `build`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("3 errors"), "{}", out.stderr);
}

#[test]
fn check_json_format_prints_one_object_per_line() {
    let source = "pipeline demo {\n  job a { needs = [b]  run \"x\" }\n}\n";
    let out = Test::new()
        .pipeline(source)
        .args(&["check", "--format", "json"])
        .expect_exit(2);
    let line: serde_json::Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["code"], "E0101");
    assert_eq!(line["severity"], "error");
    assert_eq!(line["line"], 2);
    assert_eq!(line["file"], "pipeline.pipe");
    assert!(line["column"].as_u64().unwrap() > 1);
}

#[test]
fn warnings_do_not_fail_check() {
    let source =
        "pipeline demo {\n  secret unused { from = env(\"X\") }\n  job a { run \"x\" }\n}\n";
    let out = Test::new().pipeline(source).args(&["check"]).expect_exit(0);
    assert!(out.stderr.contains("W0101"), "{}", out.stderr);
}

#[test]
fn compile_prints_plan_and_writes_to_a_file() {
    let test = Test::new().pipeline(CLEAN).args(&["compile"]);
    let out = test.expect_exit(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["schema"], "pipe.plan/v1");
    assert_eq!(plan["pipeline"], "demo");
    let ids: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["build", "test", "ok"]);
    let test = Test::new()
        .pipeline(CLEAN)
        .args(&["compile", "-o", "plan.json"]);
    let out = test.expect_exit(0);
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(test.path("plan.json")).unwrap();
    assert!(written.contains("pipe.plan/v1"));
}

#[test]
fn compile_reports_cycles_in_order() {
    let source = "pipeline demo {\n  job a { needs = [c]  run \"x\" }\n  job b { needs = [a]  run \"x\" }\n  job c { needs = [b]  run \"x\" }\n}\n";
    let out = Test::new()
        .pipeline(source)
        .args(&["compile"])
        .expect_exit(2);
    assert!(out.stderr.contains("E0301"), "{}", out.stderr);
    assert!(out.stderr.contains("a → b → c → a"), "{}", out.stderr);
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let out = Test::new().pipeline(CLEAN).args(&["graph"]).expect_exit(0);
    assert!(
        out.stdout.contains("\"build\" -> \"test\""),
        "{}",
        out.stdout
    );
    let out = Test::new()
        .pipeline(CLEAN)
        .args(&["graph", "--format", "mermaid"])
        .expect_exit(0);
    assert!(out.stdout.starts_with("flowchart LR"));
    assert!(out.stdout.contains("n0 --> n1"), "{}", out.stdout);
}

#[test]
fn explain_prints_each_code_and_rejects_unknown_ones() {
    for code in pipe::diagnostics::all_codes() {
        let out = Test::new().args(&["explain", code]).expect_exit(0);
        assert!(out.stdout.contains(code), "{code}: {}", out.stdout);
        assert!(
            out.stdout.contains("Wrong:") && out.stdout.contains("Fixed:"),
            "{code}"
        );
    }
    let out = Test::new().args(&["explain", "E0410"]).expect_exit(2);
    assert!(out.stderr.contains("unknown code"), "{}", out.stderr);
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = Test::new().args(&["check"]).expect_exit(2);
    assert!(out.stderr.contains("pipeline.pipe"), "{}", out.stderr);
}

#[test]
fn no_color_output_has_no_escape_codes() {
    let source = "pipeline demo {\n  job a { needs = [b]  run \"x\" }\n}\n";
    let out = Test::new()
        .pipeline(source)
        .args(&["check"])
        .env("NO_COLOR", "1")
        .expect_exit(2);
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
}

#[test]
fn relative_imports_resolve_against_the_importing_file() {
    let test = Test::new()
        .file(
            "ci/common.pipe",
            "// Says hello.\ntemplate hello(who: string) { run \"echo hello ${{ who }}\" }\n",
        )
        .file(
            "sub/pipeline.pipe",
            "import \"../ci/common.pipe\"\npipeline p {\n  job greet = hello(who: \"world\")\n}\n",
        )
        .args(&["compile", "sub/pipeline.pipe"]);
    let out = test.expect_exit(0);
    assert!(out.stdout.contains("echo hello world"), "{}", out.stdout);
    assert!(Path::new(&test.path("sub/pipeline.pipe")).exists());
}

#[test]
fn completions_are_generated() {
    let out = Test::new().args(&["completions", "bash"]).expect_exit(0);
    assert!(out.stdout.contains("pipe"));
}

#[test]
fn init_writes_a_starter_that_checks_and_refuses_to_overwrite_it() {
    let test = Test::new()
        .file("Cargo.toml", "[package]\nname = \"svc\"\n")
        .file(".gitignore", "target/")
        .args(&["init", "--name", "svc"]);
    let out = test.expect_exit(0);
    assert!(out.stdout.contains("a Cargo project"), "{}", out.stdout);
    let written = std::fs::read_to_string(test.path("pipeline.pipe")).unwrap();
    assert!(written.contains("import \"std/rust\"") && written.contains("pipeline svc {"));
    assert_eq!(
        std::fs::read_to_string(test.path(".gitignore")).unwrap(),
        "target/\n.pipe/\n"
    );
    let check = Test {
        args: vec!["check".into()],
        ..test
    };
    check.expect_exit(0);
    let again = Test {
        args: vec!["init".into()],
        ..check
    };
    let refused = again.expect_exit(2);
    assert!(
        refused.stderr.contains("already exists"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(again.path("pipeline.pipe")).unwrap(),
        written
    );
}

#[test]
fn init_without_a_build_system_writes_placeholders_named_after_the_directory() {
    let test = Test::new().args(&["init"]);
    let out = test.expect_exit(0);
    assert!(out.stdout.contains("placeholder"), "{}", out.stdout);
    let written = std::fs::read_to_string(test.path("pipeline.pipe")).unwrap();
    assert!(written.contains("run \"echo build\""), "{written}");
    assert!(!test.path(".gitignore").exists(), "not a git repository");
}

#[test]
fn fmt_check_names_the_unformatted_file_and_fmt_fixes_it_in_place() {
    let messy = "pipeline demo {\n      job build { run \"echo build\" }   \n\n\n\n job test {\n needs = [build]\n run \"echo test\" }\n}";
    let test = Test::new().pipeline(messy).args(&["fmt", "--check"]);
    let out = test.expect_exit(1);
    assert!(
        out.stderr
            .contains("pipeline.pipe: not formatted (from line 2)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(test.path("pipeline.pipe")).unwrap(),
        messy
    );
    let fix = Test {
        args: vec!["fmt".into()],
        ..test
    };
    assert!(
        fix.expect_exit(0)
            .stdout
            .contains("formatted pipeline.pipe")
    );
    assert_eq!(
        std::fs::read_to_string(fix.path("pipeline.pipe")).unwrap(),
        "pipeline demo {\n  job build { run \"echo build\" }\n\n  job test {\n    needs = [build]\n    run \"echo test\" }\n}\n"
    );
    let again = Test {
        args: vec!["fmt".into(), "--check".into()],
        ..fix
    };
    assert_eq!(again.expect_exit(0).stderr, "");
}

#[test]
fn fmt_refuses_a_file_that_does_not_parse() {
    let broken = "pipeline demo {\n  job build { run \"echo\" \n";
    let test = Test::new().pipeline(broken).args(&["fmt"]);
    let out = test.expect_exit(2);
    assert!(out.stderr.contains("E0001"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(test.path("pipeline.pipe")).unwrap(),
        broken
    );
}
