//! Every `tests/fixtures/*.pipe` is a case: its first line says `// expect: CODE[, CODE…]`
//! (or `// expect: clean`), and the rendered, colourless diagnostics are an insta snapshot.
#![allow(clippy::unwrap_used)]

use pipe::{FileLoader, compile_source};
use std::path::Path;

fn expected_codes(source: &str) -> Vec<String> {
    let header = source.lines().next().unwrap_or("");
    let list = header
        .strip_prefix("// expect:")
        .unwrap_or_else(|| panic!("fixture must start with `// expect: CODE`, found {header:?}"));
    list.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c != "clean")
        .collect()
}

fn check_fixture(path: &Path) -> Result<(), String> {
    let source = std::fs::read_to_string(path).unwrap();
    let name = path.to_string_lossy().replace('\\', "/");
    let compilation = compile_source(&name, &source, &FileLoader);
    let mut found: Vec<String> = compilation
        .diagnostics
        .iter()
        .map(|d| d.code.to_string())
        .collect();
    found.sort();
    found.dedup();
    let mut expected = expected_codes(&source);
    expected.sort();
    expected.dedup();
    if found != expected {
        return Err(format!(
            "{name}: expected {expected:?}, found {found:?}\n{}",
            compilation.render(false)
        ));
    }
    for diagnostic in &compilation.diagnostics {
        if diagnostic.help.is_none() {
            return Err(format!("{name}: {} has no help line", diagnostic.code));
        }
        if !diagnostic.labels.iter().any(|l| l.primary) {
            return Err(format!("{name}: {} has no primary label", diagnostic.code));
        }
    }
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    let snapshot = format!(
        "{source}\n----- pipe check -----\n{}",
        compilation.render(false)
    );
    insta::with_settings!({ snapshot_path => "snapshots/diagnostics", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(stem, snapshot);
    });
    Ok(())
}

#[test]
fn every_fixture_reports_exactly_its_codes() {
    let mut paths: Vec<_> = std::fs::read_dir("tests/fixtures")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pipe"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures found");
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| check_fixture(p).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_code_has_a_fixture() {
    let mut missing = Vec::new();
    for code in pipe::all_codes() {
        let covered = std::fs::read_dir("tests/fixtures").unwrap().any(|e| {
            let path = e.unwrap().path();
            std::fs::read_to_string(&path)
                .map(|s| expected_codes_lenient(&s).iter().any(|c| c == code))
                .unwrap_or(false)
        });
        if !covered {
            missing.push(code);
        }
    }
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

fn expected_codes_lenient(source: &str) -> Vec<String> {
    if source.starts_with("// expect:") {
        expected_codes(source)
    } else {
        Vec::new()
    }
}

/// Each diagnostic's first `╭─[file:line:column]` in the text, in order: the header's place.
fn header_locations(rendered: &str) -> Vec<String> {
    let mut locations = Vec::new();
    let mut awaiting = false;
    for line in rendered.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("× error[") || trimmed.starts_with("⚠ warning[") {
            awaiting = true;
        } else if awaiting && let Some(at) = trimmed.strip_prefix("╭─[") {
            locations.push(at.trim_end_matches(']').to_string());
            awaiting = false;
        }
    }
    locations
}

#[test]
fn headers_name_the_severity_and_the_primary_label_in_characters_as_json_does() {
    for entry in std::fs::read_dir("tests/fixtures").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pipe") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let name = path.to_string_lossy().replace('\\', "/");
        let compilation = compile_source(&name, &source, &FileLoader);
        let from_json: Vec<String> = compilation
            .render_json()
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                format!(
                    "{}:{}:{}",
                    value["file"].as_str().unwrap(),
                    value["line"],
                    value["column"]
                )
            })
            .collect();
        let rendered = compilation.render(false);
        assert_eq!(
            header_locations(&rendered),
            from_json,
            "{name}:\n{rendered}"
        );
        let words = rendered
            .lines()
            .filter(|l| l.contains("× error[") || l.contains("⚠ warning["))
            .count();
        assert_eq!(words, compilation.diagnostics.len(), "{name}:\n{rendered}");
    }
}
