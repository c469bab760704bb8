//! A real editor as the client: Debian's neovim (0.7.2, `vim.lsp.start_client`) runs headless
//! with `tests/neovim/lsp_client.lua`, which drives neovim's own LSP client against the real
//! `pipe lsp` on a copy of the release example: diagnostic, quick fix, definition, references,
//! completion, hover and rename. Without `nvim` this test fails (`.ci/install-neovim.sh`).

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

fn run_neovim(file: &std::path::Path, out: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/neovim/lsp_client.lua");
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-u", "NONE", "-c"])
        .arg(format!("luafile {script}"))
        .env("PIPE_BIN", env!("CARGO_BIN_EXE_pipe"))
        .env("PIPE_NVIM_FILE", file)
        .env("PIPE_NVIM_OUT", out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("nvim is installed (.ci/install-neovim.sh installs Debian's neovim)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "neovim did not finish: {}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn neovim_diagnoses_fixes_navigates_completes_hovers_and_renames_through_pipe_lsp() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/release/pipeline.pipe"
    ))
    .unwrap();
    let mistyped = example.replace("after = [build]", "after = [biuld]");
    assert_ne!(mistyped, example);
    let file = dir.path().join("pipeline.pipe");
    std::fs::write(&file, &mistyped).unwrap();
    let out = dir.path().join("results.jsonl");
    run_neovim(&file, &out);

    let written = std::fs::read_to_string(&out).unwrap();
    let results: BTreeMap<String, Value> = written
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|v| (v["step"].as_str().unwrap().to_string(), v["value"].clone()))
        .collect();
    assert!(!results.contains_key("error"), "{written}");
    let line_of = |needle: &str| example.lines().position(|l| l.contains(needle)).unwrap();

    let diagnostics = results["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 1, "{written}");
    assert_eq!(diagnostics[0]["code"], "E0101");
    assert_eq!(diagnostics[0]["line"], line_of("after = [build]"));
    assert_eq!(results["code_action"], "Replace with `build`");
    assert_eq!(results["fixed_line"], "    after = [build]");
    assert_eq!(results["diagnostics_after_fix"], 0);
    assert_eq!(results["definition"]["line"], line_of("job build"));
    assert_eq!(results["definition"]["character"], 6);
    let references: Vec<usize> = results["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(
        references,
        [
            line_of("job build"),
            line_of("after = [build]"),
            line_of("jobs.build")
        ]
    );
    assert_eq!(results["completion"], serde_json::json!(["build"]));
    let hover = results["hover"].as_str().unwrap();
    assert!(
        hover.contains("template sqlite_backup(database: string"),
        "{hover}"
    );
    assert_eq!(
        results["renamed"],
        serde_json::json!([
            "job compile {",
            "after = [compile]",
            "require jobs.compile.succeeded"
        ])
    );
    assert_eq!(results["diagnostics_after_rename"], 0);
}
