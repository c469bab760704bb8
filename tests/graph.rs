//! `pipe graph`: stages and promotes drawn as clusters, rollbacks as dashed edges, drills beside
//! their environment, `--hide-implied`; every example's drawing renders with Graphviz `dot`.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn pipe_graph(file: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("graph")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path().join("pipeline.pipe"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
}

/// Renders `dot` text to SVG with Graphviz; a missing `dot` fails the test.
fn render_svg(dot: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Graphviz `dot` must be installed (.ci/install-graphviz.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "dot -Tsvg refused the drawing:\n{}\n{dot}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_example_renders_with_dot() {
    for file in examples() {
        for extra in [&[][..], &["--hide-implied"][..]] {
            let svg = render_svg(&pipe_graph(&file, extra));
            assert!(svg.contains("<svg"), "{}: no svg", file.display());
        }
    }
}

#[test]
fn release_example_draws_clusters_rollbacks_and_drills() {
    let file = Path::new("examples/release/pipeline.pipe");
    let dot = pipe_graph(file, &[]);
    assert!(
        dot.contains("subgraph \"cluster_promote_staging\""),
        "{dot}"
    );
    assert!(
        dot.contains("\"staging.watch\" -> \"staging.rollback\" [style=dashed"),
        "{dot}"
    );
    assert!(dot.contains("\"drill.restore_orders\""), "{dot}");
    insta::assert_snapshot!("release_dot", dot);
    insta::assert_snapshot!(
        "release_mermaid",
        pipe_graph(file, &["--format", "mermaid"])
    );
    let svg = render_svg(&dot);
    assert!(svg.contains("cluster_promote_production"), "{svg}");
}

#[test]
fn hide_implied_drops_only_edges_another_path_implies() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.pipe");
    std::fs::write(
        &file,
        "pipeline p {\n  job a { run \"true\" }\n  job b { needs = [a]  run \"true\" }\n  \
         job c { needs = [a, b]  run \"true\" }\n  stage checks {\n    job d { needs = [c]  \
         run \"true\" }\n  }\n}\n",
    )
    .unwrap();
    let all = pipe_graph(&file, &[]);
    let reduced = pipe_graph(&file, &["--hide-implied"]);
    assert!(all.contains("\"a\" -> \"c\";"), "{all}");
    assert!(!reduced.contains("\"a\" -> \"c\";"), "{reduced}");
    for kept in ["\"a\" -> \"b\";", "\"b\" -> \"c\";", "\"c\" -> \"d\";"] {
        assert!(reduced.contains(kept), "{kept} missing:\n{reduced}");
    }
    assert!(
        reduced.contains("subgraph \"cluster_stage_checks\""),
        "{reduced}"
    );
    render_svg(&reduced);
}
