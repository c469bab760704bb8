//! The dry run and `pipe plan` name the rollback target the real run then records: both ask
//! the engine's own decision (the newest stable release whose digest differs from the build's).
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;

const ENVIRONMENTS: [&str; 2] = ["staging", "production"];

/// A project with two good releases (`GOOD`, then `GOOD2`) in both environments.
fn two_good_releases() -> Project {
    let project = Project::with("300ms", "for 100ms", RUN_ROLLBACK);
    for release in [GOOD, GOOD2] {
        let output = project.release(release);
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    for environment in ENVIRONMENTS {
        assert_eq!(project.statuses(environment), ["stable", "stable"]);
    }
    project
}

const THIRD: &str = "name=third;error_rate=0%";

const RUN_ROLLBACK: &str = "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"";

/// The version of the environment's `index`th release in the ledger.
fn version(project: &Project, environment: &str, index: usize) -> String {
    project.ledger(environment)["releases"][index]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The dry run's `rollback target:` line of each promote, in plan order.
fn dry_run_targets(project: &Project, release: &str) -> Vec<String> {
    let output = project.pipe(release, &["run", "--dry-run"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rollback target: "))
        .map(str::to_string)
        .collect()
}

/// `pipe plan --format json`: each promote's expected target version, in run order.
fn plan_targets(project: &Project) -> Vec<String> {
    let output = project.pipe("unused", &["plan", "--format", "json"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    plan["promotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["previous_stable"]["version"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The `previous_version` each promote of the newest run audited, in run order.
fn recorded_targets(project: &Project) -> Vec<String> {
    let events = project.audit_events();
    let last_run = events.last().unwrap()["run"].clone();
    events
        .iter()
        .filter(|e| e["run"] == last_run && e["event"] == "previous_stable_recorded")
        .map(|e| e["previous_version"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_unchanged_build_is_previewed_with_the_target_the_run_records() {
    let project = two_good_releases();
    let first = version(&project, "staging", 0);
    let current = version(&project, "staging", 1);
    // build/app.txt still holds GOOD2: the next build is unchanged.
    let dry = dry_run_targets(&project, GOOD2);
    assert_eq!(dry.len(), 2, "{dry:?}");
    for line in &dry {
        assert!(line.starts_with(&format!("{first} (")), "{line}");
        assert!(
            line.contains("the artifact as built now: sha256:"),
            "{line}"
        );
        assert!(
            !line.contains(&current),
            "names the current release: {line}"
        );
    }
    let planned = plan_targets(&project);
    assert_eq!(planned, [first.clone(), first.clone()]);

    let output = project.release(GOOD2);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(recorded_targets(&project), [first.clone(), first]);
}

#[test]
fn a_changed_build_is_previewed_with_the_current_stable_release() {
    let project = two_good_releases();
    let current = version(&project, "production", 1);
    // What the build job writes for THIRD, so the preview hashes the build that will run.
    std::fs::write(
        project.root().join("build/app.txt"),
        THIRD.replace(';', "\n") + "\n",
    )
    .unwrap();
    let dry = dry_run_targets(&project, THIRD);
    assert!(
        dry.iter().all(|l| l.starts_with(&format!("{current} ("))),
        "{dry:?}"
    );
    assert_eq!(plan_targets(&project), [current.clone(), current.clone()]);

    let output = project.release(THIRD);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(recorded_targets(&project), [current.clone(), current]);
}

#[test]
fn an_artifact_not_built_yet_is_previewed_with_both_outcomes() {
    let project = two_good_releases();
    let first = version(&project, "staging", 0);
    let current = version(&project, "staging", 1);
    std::fs::remove_dir_all(project.root().join("build")).unwrap();
    let dry = dry_run_targets(&project, GOOD2);
    let line = &dry[0];
    assert!(line.contains("not built yet"), "{line}");
    let changed = line.find(&format!("{current} (")).unwrap();
    let unchanged = line.find(&format!("or {first} (")).unwrap();
    assert!(changed < unchanged, "{line}");
    assert!(line.ends_with("if the build is unchanged"), "{line}");
}
