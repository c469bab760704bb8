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
    stdin: Option<String>,
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
            stdin: None,
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

    fn stdin(mut self, text: &str) -> Test {
        self.stdin = Some(text.to_string());
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
        let output = match &self.stdin {
            None => command.output().unwrap(),
            Some(text) => {
                use std::io::Write;
                let mut child = command
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        };
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
    for code in pipe::all_codes() {
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

/// The promise of `pipe init`: in a project just made by `cargo new` (no Cargo.lock yet), the
/// starter checks clean and its first run builds, tests and delivers to staging.
#[test]
fn init_in_a_fresh_cargo_project_checks_and_its_first_run_succeeds() {
    let test = Test::new();
    let status = Command::new("cargo")
        .args(["new", "--vcs", "git", "--quiet", "hello-svc"])
        .current_dir(test.dir.path())
        .env("CARGO_NET_OFFLINE", "true")
        .status()
        .unwrap();
    assert!(status.success(), "cargo new");
    assert!(!test.path("hello-svc/Cargo.lock").exists());
    let init = test.args(&["init", "hello-svc"]);
    let out = init.expect_exit(0);
    assert!(
        out.stdout.contains("for pipeline `hello-svc`"),
        "{}",
        out.stdout
    );
    let written = std::fs::read_to_string(init.path("hello-svc/pipeline.pipe")).unwrap();
    for part in [
        "artifact app",
        "promote staging",
        "smoke",
        "rollback",
        "// promote production",
        "// drill",
    ] {
        assert!(written.contains(part), "{part} in\n{written}");
    }
    let file = "hello-svc/pipeline.pipe";
    let mut test = init;
    for (args, code) in [
        (vec!["check", file], 0),
        (vec!["fmt", "--check", file], 0),
        (vec!["compile", file], 0),
        (vec!["run", file], 0),
    ] {
        test = Test {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..test
        };
        let out = test.expect_exit(code);
        if args[0] == "compile" {
            // Whole commands: none ends in the space an empty template argument left.
            for command in [
                "cargo test --locked --workspace",
                "cargo clippy --locked --all-targets -- -D warnings",
                "cargo build --locked --profile release --workspace",
            ] {
                let quoted = format!("\"{command}\"");
                assert!(out.stdout.contains(&quoted), "{command} in\n{}", out.stdout);
            }
        }
    }
    assert!(test.path("hello-svc/Cargo.lock").exists());
    assert!(test.path("hello-svc/deploy/staging/hello-svc").exists());
}

#[test]
fn init_names_the_pipeline_after_the_crate_or_the_npm_package() {
    for (manifest, text, name) in [
        (
            "app/Cargo.toml",
            "[package]\nname = \"billing-api\"\n",
            "billing-api",
        ),
        ("app/package.json", r#"{"name": "@acme/web"}"#, "web"),
    ] {
        let test = Test::new().file(manifest, text).args(&["init", "app"]);
        let out = test.expect_exit(0);
        assert!(
            out.stdout.contains(&format!("for pipeline `{name}`")),
            "{}",
            out.stdout
        );
        let written = std::fs::read_to_string(test.path("app/pipeline.pipe")).unwrap();
        assert!(
            written.contains(&format!("pipeline {name} {{")),
            "{written}"
        );
        assert!(written.contains("promote staging {"), "{written}");
    }
}

/// Runs `git ARGS` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=pipe", "-c", "user.email=pipe@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn a_missing_git_sha_is_a_warning_not_a_silent_empty_version() {
    let source = "pipeline api {\n  version = \"api-${{ date }}-${{ git.short_sha }}\"\n  job build { run \"echo build\" }\n}\n";
    let test = Test::new().pipeline(source).args(&["run", "--dry-run"]);
    let out = test.expect_exit(0);
    let warning = "warning: the pipeline reads git.short_sha but ";
    assert!(out.stderr.contains(warning), "{}", out.stderr);
    assert!(
        out.stderr.contains("every `git.*` value is empty"),
        "{}",
        out.stderr
    );
    let plan = Test {
        args: vec!["plan".into()],
        ..test
    };
    assert!(plan.expect_exit(0).stderr.contains(warning));
    git(plan.dir.path(), &["init", "-q"]);
    git(plan.dir.path(), &["add", "pipeline.pipe"]);
    git(plan.dir.path(), &["commit", "-q", "-m", "first"]);
    let committed = Test {
        args: vec!["run".into(), "--dry-run".into()],
        ..plan
    };
    let out = committed.expect_exit(0);
    assert!(!out.stderr.contains("git"), "{}", out.stderr);
    let without_git_names = Test::new().pipeline(CLEAN).args(&["run", "--dry-run"]);
    let out = without_git_names.expect_exit(0);
    assert!(!out.stderr.contains("git"), "{}", out.stderr);
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

const MESSY: &str = "pipeline   demo{\n  job build { run \"echo build\" }\n  job test { needs=[ build ,  ] ; run \"echo test\"}\n}\n";
const TIDY: &str = "pipeline demo {\n  job build { run \"echo build\" }\n  job test { needs = [build]; run \"echo test\" }\n}\n";

#[test]
fn fmt_diff_prints_a_unified_diff_and_changes_nothing() {
    let test = Test::new().pipeline(MESSY).args(&["fmt", "--diff"]);
    let out = test.expect_exit(0);
    for line in [
        "--- a/pipeline.pipe",
        "+++ b/pipeline.pipe",
        "@@ -1,4 +1,4 @@",
        "-pipeline   demo{",
        "+pipeline demo {",
        "   job build { run \"echo build\" }",
        "+  job test { needs = [build]; run \"echo test\" }",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line:?} in\n{}",
            out.stdout
        );
    }
    assert_eq!(
        std::fs::read_to_string(test.path("pipeline.pipe")).unwrap(),
        MESSY
    );
    let check = Test {
        args: vec!["fmt".into(), "--check".into(), "--diff".into()],
        ..test
    };
    let out = check.expect_exit(1);
    assert!(out.stdout.contains("+pipeline demo {"), "{}", out.stdout);
    assert_eq!(out.stderr, "pipeline.pipe: not formatted (from line 1)\n");
    let tidy = Test::new()
        .pipeline(TIDY)
        .args(&["fmt", "--check", "--diff"]);
    let out = tidy.expect_exit(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn fmt_dash_formats_stdin_to_stdout() {
    let out = Test::new().args(&["fmt", "-"]).stdin(MESSY).expect_exit(0);
    assert_eq!(out.stdout, TIDY);
    let out = Test::new()
        .args(&["fmt", "--check", "-"])
        .stdin(MESSY)
        .expect_exit(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("<stdin>: not formatted (from line 1)"),
        "{}",
        out.stderr
    );
    let out = Test::new()
        .args(&["fmt", "-"])
        .stdin("pipeline p {\n")
        .expect_exit(2);
    assert!(
        out.stderr.contains("E0001") && out.stdout.is_empty(),
        "{}",
        out.stderr
    );
}

#[test]
fn fmt_formats_every_pipe_file_under_a_directory() {
    let test = Test::new()
        .file("ci/a.pipe", MESSY)
        .file("ci/deep/b.pipe", MESSY)
        .file("ci/deep/tidy.pipe", TIDY)
        .file("ci/.hidden/c.pipe", MESSY)
        .file("ci/target/d.pipe", MESSY)
        .file("ci/notes.txt", MESSY)
        .args(&["fmt", "--check", "ci"]);
    let out = test.expect_exit(1);
    assert_eq!(
        out.stderr,
        "ci/a.pipe: not formatted (from line 1)\nci/deep/b.pipe: not formatted (from line 1)\n"
    );
    let fix = Test {
        args: vec!["fmt".into(), "ci".into()],
        ..test
    };
    let out = fix.expect_exit(0);
    assert_eq!(
        out.stdout,
        "formatted ci/a.pipe\nformatted ci/deep/b.pipe\n"
    );
    for (name, text) in [
        ("ci/a.pipe", TIDY),
        ("ci/deep/b.pipe", TIDY),
        ("ci/.hidden/c.pipe", MESSY),
        ("ci/target/d.pipe", MESSY),
        ("ci/notes.txt", MESSY),
    ] {
        assert_eq!(
            std::fs::read_to_string(fix.path(name)).unwrap(),
            text,
            "{name}"
        );
    }
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

// ---- Hostile inputs: never a panic, bounded output, a clear refusal with the right exit code.

#[test]
fn an_error_past_column_65535_is_shown_in_a_window_by_every_command() {
    let source = format!("pipeline p {{{}@ }}\n", " ".repeat(70_000));
    for args in [
        vec!["check"],
        vec!["fmt", "pipeline.pipe"],
        vec!["compile"],
        vec!["graph"],
        vec!["plan"],
        vec!["run"],
    ] {
        let out = Test::new().pipeline(&source).args(&args).expect_exit(2);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("pipeline.pipe:1:70013]"),
            "{args:?}: the real column in characters: {}",
            out.stderr
        );
        assert!(out.stderr.contains("…"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.len() < 2_000, "{args:?}: {}", out.stderr.len());
    }
}

#[test]
fn thousands_of_errors_on_one_line_print_a_bounded_report() {
    let source = format!(
        "pipeline p {{ job a {{ run \"{}\" }} }}\n",
        "${{ x }}".repeat(3_000)
    );
    let out = Test::new()
        .pipeline(&source)
        .args(&["check"])
        .expect_exit(2);
    assert!(
        out.stderr
            .contains("… and 2800 more diagnostics (2800 errors) not shown"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(500)..]
    );
    assert!(
        out.stderr.ends_with("3000 errors found\n"),
        "the count stays exact"
    );
    assert!(out.stderr.len() < 200_000, "{} bytes", out.stderr.len());
}

#[test]
fn imports_outside_the_repository_or_of_non_files_are_refused_unread() {
    let test = Test::new()
        .file("repo/.git/HEAD", "ref: refs/heads/main\n")
        .file("outside.pipe", "template t() { run \"x\" }\n")
        .file("repo/big.pipe", &format!("// {}\n", "x".repeat(1_100_000)))
        .file("repo/dir/keep", "");
    std::os::unix::fs::symlink(test.path("outside.pipe"), test.path("repo/link.pipe")).unwrap();
    let cases = [
        ("/dev/zero", "cannot be absolute"),
        ("/etc/passwd", "cannot be absolute"),
        ("../outside.pipe", "is outside the"),
        ("./link.pipe", "is outside the"),
        ("./big.pipe", "larger than the import limit"),
        ("./dir", "is not a regular file"),
    ];
    for (import, why) in cases {
        let source = format!("import \"{import}\"\npipeline p {{ job a {{ run \"x\" }} }}\n");
        std::fs::write(test.path("repo/pipeline.pipe"), source).unwrap();
        let result = Command::new(env!("CARGO_BIN_EXE_pipe"))
            .args(["check", "pipeline.pipe"])
            .current_dir(test.path("repo"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{import}: {stderr}");
        assert!(
            stderr.contains("E0105") && stderr.contains(why),
            "{import}: {stderr}"
        );
        assert!(
            !stderr.contains("root:"),
            "{import}: never quotes the file: {stderr}"
        );
    }
}

/// A compiled plan of [`CLEAN`], edited by `edit`, run with `pipe run plan.json`.
fn run_edited_plan(edit: impl FnOnce(&mut serde_json::Value)) -> Output {
    let test = Test::new().pipeline(CLEAN).args(&["compile"]);
    let mut plan: serde_json::Value = serde_json::from_str(&test.expect_exit(0).stdout).unwrap();
    edit(&mut plan);
    let test = test.file("plan.json", &plan.to_string()).args(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["run", "plan.json"])
        .current_dir(test.path(""))
        .output()
        .unwrap();
    assert!(!test.path(".pipe/runs").exists(), "nothing ran");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code().unwrap_or(-1),
    }
}

#[test]
fn a_plan_that_cannot_run_is_refused_naming_the_node_and_field() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 5] = [
        (
            |p| p["nodes"][0]["needs"] = serde_json::json!(["build"]),
            "node `build`, field `needs`: the node needs itself",
        ),
        (
            |p| p["nodes"][0]["needs"] = serde_json::json!(["test"]),
            "node `test`, field `needs`: the needs form a cycle (test → build → test)",
        ),
        (
            |p| p["nodes"][1]["needs"] = serde_json::json!(["ghost"]),
            "node `test`, field `needs`: names `ghost`, which is not a node",
        ),
        (
            |p| p["schema"] = "pipe.plan/v999".into(),
            "field `schema`: `pipe.plan/v999` is not supported",
        ),
        (
            |p| p["nodes"][0]["retries"] = (-1).into(),
            "invalid value: integer `-1`",
        ),
    ];
    for (edit, expected) in cases {
        let out = run_edited_plan(edit);
        assert_eq!(out.code, 2, "{expected}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("plan.json is not a valid pipe.plan/v1 plan"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
}

#[test]
fn a_state_directory_that_is_a_file_is_a_usage_error_everywhere() {
    let commands: [&[&str]; 8] = [
        &["releases"],
        &["plan"],
        &["rollback", "staging"],
        &["audit", "verify"],
        &["audit", "show"],
        &["evidence"],
        &["resume", "some-run"],
        &["run"],
    ];
    for args in commands {
        let out = Test::new()
            .pipeline(CLEAN)
            .file(".pipe", "not a directory\n")
            .args(args)
            .expect_exit(2);
        assert!(
            out.stderr.contains(".pipe is not a directory"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn resume_names_a_corrupt_state_or_plan_file_and_what_is_wrong() {
    let test = Test::new().pipeline(CLEAN).args(&["run"]);
    test.expect_exit(0);
    let runs = test.path(".pipe/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    let run_id = run.file_name().to_string_lossy().into_owned();
    let resume = Test {
        args: Vec::new(),
        ..test
    }
    .args(&["resume", &run_id]);

    std::fs::write(run.path().join("state.json"), "{\"run_id\": \n  oops").unwrap();
    let out = resume.expect_exit(2);
    assert!(out.stderr.contains("state.json"), "{}", out.stderr);
    assert!(out.stderr.contains("line 2 column 3"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("no run"),
        "not mistaken for a missing run: {}",
        out.stderr
    );

    let plan_path = run.path().join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    plan["nodes"][0]["needs"] = serde_json::json!(["build"]);
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let out = resume.expect_exit(2);
    let expected = "plan.json: node `build`, field `needs`: the node needs itself";
    assert!(out.stderr.contains(expected), "{}", out.stderr);
}

#[test]
fn a_device_as_the_pipeline_file_is_refused_not_read_forever() {
    for args in [
        ["check", "/dev/zero"],
        ["fmt", "/dev/zero"],
        ["run", "/dev/zero"],
    ] {
        let out = Test::new().args(&args).expect_exit(2);
        assert!(
            out.stderr.contains("/dev/zero: not a regular file"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn check_and_compile_read_stdin_for_a_dash() {
    let out = Test::new()
        .args(&["check", "-"])
        .stdin(CLEAN)
        .expect_exit(0);
    assert!(out.stderr.contains("<stdin>: ok"), "{}", out.stderr);
    let out = Test::new()
        .args(&["check", "-"])
        .stdin("pipeline demo {\n  job a { needs = [b]  run \"x\" }\n}\n")
        .expect_exit(2);
    assert!(out.stderr.contains("E0101"), "{}", out.stderr);
    assert!(out.stderr.contains("<stdin>"), "{}", out.stderr);
    let out = Test::new()
        .args(&["compile", "-"])
        .stdin(CLEAN)
        .expect_exit(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["pipeline"], "demo");
}

#[test]
fn a_missing_pipeline_file_suggests_pipe_init() {
    for command in ["check", "compile", "run", "graph"] {
        let out = Test::new().args(&[command]).expect_exit(2);
        assert!(
            out.stderr.contains("cannot read pipeline.pipe")
                && out
                    .stderr
                    .contains("`pipe init` writes a starter pipeline.pipe"),
            "{command}: {}",
            out.stderr
        );
    }
    let out = Test::new().args(&["check", "other.pipe"]).expect_exit(2);
    assert!(!out.stderr.contains("pipe init"), "{}", out.stderr);
}

#[test]
fn runs_lists_the_recorded_runs_newest_first_and_resume_last_takes_the_newest() {
    let test = Test::new()
        .pipeline("pipeline demo {\n  job a { run \"test -f ok || { touch ok; exit 1; }\" }\n}\n");
    let empty = Test::new().args(&["runs"]).expect_exit(0);
    assert!(
        empty.stdout.contains("no runs recorded"),
        "{}",
        empty.stdout
    );
    let failed = Test {
        args: vec!["run".into()],
        ..test
    };
    failed.expect_exit(1);
    let passed = Test {
        args: vec!["run".into()],
        ..failed
    };
    passed.expect_exit(0);
    let runs = Test {
        args: vec!["runs".into()],
        ..passed
    };
    let out = runs.expect_exit(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].starts_with("id ") && lines[0].contains("started"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains("succeeded") && lines[1].ends_with("demo"),
        "{}",
        out.stdout
    );
    assert!(lines[2].contains("failed"), "newest first: {}", out.stdout);
    let json = Test {
        args: vec!["runs".into(), "--format".into(), "json".into()],
        ..runs
    };
    let out = json.expect_exit(0);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "succeeded");
    assert_eq!(rows[1]["status"], "failed");
    assert_eq!(rows[0]["pipeline"], "demo");
    let newest = rows[0]["id"].as_str().unwrap().to_string();
    let resume = Test {
        args: vec!["resume".into(), "--last".into()],
        ..json
    };
    let out = resume.expect_exit(0);
    assert!(out.stdout.contains(&newest), "{}", out.stdout);
    let out = Test::new().args(&["resume", "--last"]).expect_exit(2);
    assert!(out.stderr.contains("no run is recorded"), "{}", out.stderr);
    let out = Test::new().args(&["resume"]).expect_exit(2);
    assert!(out.stderr.contains("<RUN>"), "{}", out.stderr);
}

#[test]
fn every_command_takes_file_as_a_positional_and_as_dash_f() {
    let test = Test::new().file("sub/p.pipe", CLEAN);
    let test = Test {
        args: vec!["run".into(), "sub/p.pipe".into()],
        ..test
    };
    test.expect_exit(0);
    let reading: &[&[&str]] = &[
        &["check"],
        &["compile"],
        &["graph"],
        &["plan"],
        &["runs"],
        &["releases", "staging"],
        &["audit", "verify"],
        &["audit", "show"],
        &["evidence"],
    ];
    let mut test = test;
    for command in reading {
        let mut outputs = Vec::new();
        for file in [
            &["sub/p.pipe"][..],
            &["-f", "sub/p.pipe"],
            &["--file", "sub/p.pipe"],
        ] {
            let args: Vec<String> = command.iter().chain(file).map(|a| a.to_string()).collect();
            test = Test { args, ..test };
            let out = test.expect_exit(0);
            outputs.push(out.stdout);
        }
        assert!(
            outputs.iter().all(|o| *o == outputs[0]),
            "{command:?}: {outputs:#?}"
        );
    }
    let runs = Test {
        args: vec!["runs".into(), "sub/p.pipe".into()],
        ..test
    };
    let out = runs.expect_exit(0);
    assert!(
        out.stdout.contains("succeeded"),
        "the run beside sub/p.pipe: {}",
        out.stdout
    );
    let both = Test {
        args: vec![
            "check".into(),
            "sub/p.pipe".into(),
            "-f".into(),
            "sub/p.pipe".into(),
        ],
        ..runs
    };
    both.expect_exit(2);
}

#[test]
fn node_names_in_only_and_until_get_did_you_mean() {
    for args in [
        &["run", "--only", "tset"][..],
        &["run", "--until", "tset"],
        &["run", "--dry-run", "--only", "tset"],
        &["run", "--dry-run", "--until", "tset"],
    ] {
        let out = Test::new().pipeline(CLEAN).args(args).expect_exit(2);
        assert!(
            out.stderr
                .contains("no such node in pipeline `demo`; did you mean `test`?"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn check_notes_the_variable_each_secret_is_exported_as_and_warns_on_its_source_variable() {
    let source = "pipeline demo {\n  secret api_key { from = env(\"DEMO_API_KEY\") }\n  job a {\n    secrets = [api_key]\n    run \"echo $API_KEY\"\n  }\n}\n";
    let out = Test::new().pipeline(source).args(&["check"]).expect_exit(0);
    assert!(
        out.stderr.contains(
            "note: secret `api_key` is exported as $API_KEY to the steps that list it (read from $DEMO_API_KEY)"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("W0102"), "{}", out.stderr);
    let json = Test::new()
        .pipeline(source)
        .args(&["check", "--format", "json"])
        .expect_exit(0);
    assert!(
        json.stdout.is_empty() && !json.stderr.contains("note:"),
        "{}{}",
        json.stdout,
        json.stderr
    );
    let wrong = source.replace("echo $API_KEY", "echo $DEMO_API_KEY");
    let out = Test::new().pipeline(&wrong).args(&["check"]).expect_exit(0);
    assert!(out.stderr.contains("W0102"), "{}", out.stderr);
    assert!(
        out.stderr.contains("exported as `$API_KEY`"),
        "{}",
        out.stderr
    );
    let dry = Test::new()
        .pipeline(source)
        .args(&["run", "--dry-run"])
        .expect_exit(0);
    assert!(
        dry.stdout
            .contains("secret API_KEY=*** (api_key, from $DEMO_API_KEY)"),
        "{}",
        dry.stdout
    );
}
