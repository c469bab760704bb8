#![allow(clippy::unwrap_used)]
//! Artifact paths and job workdirs stay inside the pipeline's directory at run time too: a
//! symlink inside it that leads outside is refused unless the item says
//! `outside_workspace = true` — real runs through the real binary.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;

fn stored_objects(project: &Project) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(project.state_dir().join("artifacts/sha256")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && !name.ends_with(".json"))
        .collect()
}

fn symlink_artifact_pipeline(opt_in: &str, outside: &std::path::Path) -> String {
    format!(
        r#"pipeline p {{
  artifact app {{
    path = "out/app"
    {opt_in}
  }}
  job build {{
    run "mkdir -p out && ln -sf {} out/app"
    produces = [app]
  }}
}}"#,
        outside.join("secret.txt").display()
    )
}

#[test]
fn an_artifact_symlink_leading_outside_the_workspace_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not ours\n").unwrap();
    let project = Project::new(&symlink_artifact_pipeline("", outside.path()));
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(run.all().contains("outside the workspace"), "{}", run.all());
    assert!(
        run.all().contains("outside_workspace = true"),
        "{}",
        run.all()
    );
    assert!(stored_objects(&project).is_empty(), "nothing was stored");
}

#[test]
fn with_the_opt_in_the_symlink_target_content_is_stored() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "v1\n").unwrap();
    let source = symlink_artifact_pipeline("outside_workspace = true", outside.path());
    let project = Project::new(&source);
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let objects = stored_objects(&project);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let stored = project
        .state_dir()
        .join("artifacts/sha256")
        .join(&objects[0]);
    std::fs::write(outside.path().join("secret.txt"), "v2\n").unwrap();
    assert!(
        !std::fs::symlink_metadata(&stored)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(stored).unwrap(), "v1\n");
}

#[test]
fn a_workdir_symlink_leading_outside_the_workspace_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let project =
        Project::new(r#"pipeline p { job a { workdir = "elsewhere"  run "touch written-here" } }"#);
    std::os::unix::fs::symlink(outside.path(), project.path().join("elsewhere")).unwrap();
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 1, "{}", run.all());
    assert!(run.all().contains("outside the workspace"), "{}", run.all());
    assert!(
        !outside.path().join("written-here").exists(),
        "the step never ran"
    );
}

#[test]
fn an_absolute_workdir_is_a_check_error_exit_2() {
    let project = Project::new(r#"pipeline p { job a { workdir = "/"  run "true" } }"#);
    let run = project.run(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    assert!(run.all().contains("E0107"), "{}", run.all());
}
