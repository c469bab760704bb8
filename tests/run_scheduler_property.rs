#![allow(clippy::unwrap_used)]
//! A property of the scheduler, through the real binary and real processes: on random DAGs of up
//! to 2,000 nodes and a random `--jobs`, every node runs exactly once, never before its needs,
//! and never more than `--jobs` at once. `PIPE_SCHEDULER_CASES=N` runs more cases.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::HashMap;

/// Per node, the indices of the earlier nodes it needs (so the graph has no cycle).
fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    let size = prop_oneof![1usize..=60, 1500usize..=2000];
    size.prop_flat_map(|nodes| {
        proptest::collection::vec(proptest::collection::vec(any::<Index>(), 0..=3), nodes)
    })
    .prop_map(|picks| {
        picks
            .iter()
            .enumerate()
            .map(|(i, picked)| {
                let mut needs: Vec<usize> = if i == 0 {
                    Vec::new()
                } else {
                    picked.iter().map(|index| index.index(i)).collect()
                };
                needs.sort_unstable();
                needs.dedup();
                needs
            })
            .collect()
    })
}

/// Each job appends `s ID` when it starts and `e ID` before it ends, to one file: appends are
/// atomic, so the file's order is the order in which the scheduler's jobs really ran.
fn pipeline(dag: &[Vec<usize>]) -> String {
    let mut source = String::from("pipeline p {\n");
    for (i, needs) in dag.iter().enumerate() {
        let needs: Vec<String> = needs.iter().map(|j| format!("n{j}")).collect();
        let needs = if needs.is_empty() {
            String::new()
        } else {
            format!("needs = [{}]  ", needs.join(", "))
        };
        source.push_str(&format!(
            "  job n{i} {{ {needs}run \"echo s $PIPE_NODE >> events; echo e $PIPE_NODE >> events\" }}\n"
        ));
    }
    source.push_str("}\n");
    source
}

/// Checks the event order against the property; `Err` says which part failed.
fn check(dag: &[Vec<usize>], jobs: usize, events: &str) -> Result<(), String> {
    let mut started: HashMap<String, usize> = HashMap::new();
    let mut ended: HashMap<String, usize> = HashMap::new();
    let mut running = 0usize;
    for (position, line) in events.lines().enumerate() {
        let (kind, id) = line.split_once(' ').ok_or(format!("bad line {line:?}"))?;
        let seen = if kind == "s" {
            &mut started
        } else {
            &mut ended
        };
        if seen.insert(id.to_string(), position).is_some() {
            return Err(format!("{id} ran twice ({kind})"));
        }
        if kind == "s" {
            running += 1;
            if running > jobs {
                return Err(format!("{running} jobs at once with --jobs {jobs} at {id}"));
            }
            let i: usize = id[1..].parse().map_err(|_| format!("bad id {id}"))?;
            for need in &dag[i] {
                if !ended.contains_key(&format!("n{need}")) {
                    return Err(format!("{id} started before its need n{need} ended"));
                }
            }
        } else {
            running -= 1;
        }
    }
    for i in 0..dag.len() {
        let id = format!("n{i}");
        if !started.contains_key(&id) || !ended.contains_key(&id) {
            return Err(format!("{id} never ran"));
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PIPE_SCHEDULER_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_node_runs_once_after_its_needs_and_within_the_job_limit(
        dag in dag(),
        jobs in 1usize..=8,
    ) {
        let project = Project::new(&pipeline(&dag));
        let jobs_arg = jobs.to_string();
        let run = project.run(&["run", "--jobs", &jobs_arg]);
        prop_assert_eq!(run.code(), 0, "{}", run.all());
        let events = project.read("events");
        if let Err(why) = check(&dag, jobs, &events) {
            return Err(TestCaseError::fail(format!("{} nodes, --jobs {jobs}: {why}", dag.len())));
        }
    }
}

/// The checker itself rejects each kind of violation, so the property cannot pass vacuously.
#[test]
fn the_checker_catches_each_violation() {
    let dag = vec![vec![], vec![0], vec![]];
    assert!(check(&dag, 2, "s n0\ne n0\ns n1\ns n2\ne n2\ne n1\n").is_ok());
    let early = check(&dag, 2, "s n0\ns n1\ne n0\ne n1\ns n2\ne n2\n").unwrap_err();
    assert!(early.contains("before its need"), "{early}");
    let crowded = check(&dag, 1, "s n0\ns n2\ne n0\ne n2\ns n1\ne n1\n").unwrap_err();
    assert!(crowded.contains("at once"), "{crowded}");
    let twice = check(&dag, 2, "s n0\ne n0\ns n0\n").unwrap_err();
    assert!(twice.contains("twice"), "{twice}");
    let missing = check(&dag, 2, "s n0\ne n0\ns n1\ne n1\n").unwrap_err();
    assert!(missing.contains("never ran"), "{missing}");
}
