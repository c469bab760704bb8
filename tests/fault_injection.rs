//! Fault injection: `kill -9` of `pipe run` and of `pipe rollback ENV` at random moments (or
//! the moment the ledger shows the deploy or rollback in progress), then the invariants every
//! crash must keep: the audit chain verifies, `state.json` parses, the lock is free, the ledger
//! agrees with what the environment serves (or says the state is unknown, and the next
//! promote or rollback recovers it), and `pipe resume` is accepted or refused with a reason.
//!
//! `PIPE_FAULT_TRIALS=N` runs N trials of each kind (default 50); `PIPE_FAULT_SEED` repeats a
//! run's random choices (the seed is printed).
#![allow(clippy::unwrap_used)]

mod deliver_common;

use deliver_common::*;
use nix::fcntl::{Flock, FlockArg};
use sha2::Digest;
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WATCH: &str = "300ms";
const WINDOW: &str = "for 200ms";
const ROLLBACK: &str = "run \"sh ./deploy.sh ${{ previous.path }} ${{ env.url }}\"";
const A: &str = "name=a;error_rate=0%";
const B: &str = "name=b;error_rate=0%";
/// Trials run in parallel threads: enough to keep two cores busy while others wait on sleeps.
const WORKERS: usize = 4;

#[test]
fn kill_9_of_pipe_run_keeps_every_invariant() {
    let seed = Seed::new();
    let stats = run_trials(&seed, "run", run_trial);
    stats.print("pipe run");
}

#[test]
fn kill_9_of_pipe_rollback_keeps_every_invariant() {
    let seed = Seed::new();
    let stats = run_trials(&seed, "rollback", |trial, random| {
        rollback_trial(trial, random)
    });
    stats.print("pipe rollback");
}

/// A project with releases `a` then `b` stable in staging (staging serves `b`), and how long
/// an undisturbed run and rollback take there.
struct Seed {
    project: Project,
    run_time: Duration,
    rollback_time: Duration,
    seed: u64,
}

impl Seed {
    fn new() -> Seed {
        let project = Project::with(WATCH, WINDOW, ROLLBACK);
        assert_ok(&project.pipe(A, &["run", "--until", "staging.watch"]));
        let started = Instant::now();
        assert_ok(&project.pipe(B, &["run", "--until", "staging.watch"]));
        let run_time = started.elapsed();
        let probe = copy_of(&project);
        let started = Instant::now();
        assert_ok(&probe.pipe("unused", &["rollback", "staging"]));
        let rollback_time = started.elapsed();
        let seed = std::env::var("PIPE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        Seed {
            project,
            run_time,
            rollback_time,
            seed,
        }
    }
}

/// A fresh copy of the seed project (state, ledger, artifacts and environments) whose pipeline
/// points at its own environments.
fn copy_of(seed: &Project) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", seed.root().display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let pipeline = dir.path().join("pipeline.pipe");
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        &seed.root().display().to_string(),
        &dir.path().display().to_string(),
    );
    std::fs::write(pipeline, text).unwrap();
    // A copy of `.pipe/` on disk: this suite runs on the directory backend only.
    Project { dir, state: None }
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn delay(&mut self, up_to: Duration) -> Duration {
        Duration::from_millis(self.below(up_to.as_millis() as u64 + 1))
    }
}

/// What one trial saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The ledger named what the environment served.
    Agreed,
    /// The ledger said the state was unknown, and the next promote or rollback recovered it.
    Recovered,
}

struct Trial<'a> {
    seed: &'a Seed,
    index: usize,
    project: Project,
}

#[derive(Default)]
struct Stats {
    agreed: usize,
    recovered: usize,
    resumed: usize,
    resume_refused: usize,
    elapsed: Duration,
}

impl Stats {
    fn print(&self, what: &str) {
        println!(
            "FAULT {what}: {} trials, ledger agreed at once {}, unknown then recovered {}, resume accepted {}, resume refused with a reason {}, {:.1}s",
            self.agreed + self.recovered,
            self.agreed,
            self.recovered,
            self.resumed,
            self.resume_refused,
            self.elapsed.as_secs_f64()
        );
    }
}

fn trials() -> usize {
    std::env::var("PIPE_FAULT_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

fn run_trials(
    seed: &Seed,
    kind: &str,
    trial: impl Fn(&mut Trial, &mut Random) -> (Seen, Option<bool>) + Sync,
) -> Stats {
    println!("FAULT {kind}: seed {} (PIPE_FAULT_SEED)", seed.seed);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stats = Mutex::new(Stats::default());
    let total = trials();
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= total {
                        return;
                    }
                    let mut random = Random(seed.seed ^ ((index as u64 + 1) * 0x9E37_79B9));
                    let mut one = Trial {
                        seed,
                        index,
                        project: copy_of(&seed.project),
                    };
                    let (seen, resumed) = trial(&mut one, &mut random);
                    let mut stats = stats.lock().unwrap();
                    match seen {
                        Seen::Agreed => stats.agreed += 1,
                        Seen::Recovered => stats.recovered += 1,
                    }
                    match resumed {
                        Some(true) => stats.resumed += 1,
                        Some(false) => stats.resume_refused += 1,
                        None => {}
                    }
                }
            });
        }
    });
    let mut stats = stats.into_inner().unwrap();
    stats.elapsed = started.elapsed();
    stats
}

/// Kills `pipe run` of a new release (every third one bad, so kills also land in automatic
/// rollbacks), checks the invariants, resumes the run, and checks that the ledger agrees.
fn run_trial(trial: &mut Trial, random: &mut Random) -> (Seen, Option<bool>) {
    let release = if trial.index % 3 == 2 {
        format!("name=c{};error_rate=5%", trial.index)
    } else {
        format!("name=c{};error_rate=0%", trial.index)
    };
    let run = ["run", "--until", "staging.watch"];
    kill_9(
        trial,
        random,
        (&release, &run),
        "deploying",
        trial.seed.run_time,
    );
    check_crash_invariants(trial);
    check_state_parses(&trial.project);
    let seen = state_after_crash(trial);
    let resumed = resume(trial);
    if !resumed {
        // A refused resume: a new promote recovers whatever the crash left.
        recover_with(trial, 1);
    }
    assert_agrees(trial, "after resume");
    (seen, Some(resumed))
}

/// Kills `pipe rollback staging`, checks the invariants, then recovers with another rollback
/// (even trials) or a new promote (odd trials) and checks that the ledger agrees.
fn rollback_trial(trial: &mut Trial, random: &mut Random) -> (Seen, Option<bool>) {
    let rollback = ["rollback", "staging", "--approver", "ops"];
    let took = trial.seed.rollback_time;
    kill_9(trial, random, ("unused", &rollback), "rolling_back", took);
    check_crash_invariants(trial);
    let seen = state_after_crash(trial);
    recover_with(trial, trial.index % 2);
    assert_agrees(trial, "after recovery");
    (seen, None)
}

/// Starts `pipe ARGS` (with `RELEASE`) and SIGKILLs it after a random delay up to 1.1 × what
/// it takes undisturbed, or (one trial in four) as soon as the ledger shows `status`; then
/// stops the steps it left running (what a supervisor, or the kernel's parent-death signal,
/// would do).
fn kill_9(
    trial: &Trial,
    random: &mut Random,
    (release, args): (&str, &[&str]),
    status: &str,
    undisturbed: Duration,
) {
    let mut child = trial
        .project
        .command(release, args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    if trial.index.is_multiple_of(4) {
        let marker = format!("\"{status}\"");
        let started = Instant::now();
        while !ledger_text(&trial.project).contains(&marker)
            && started.elapsed() < Duration::from_secs(20)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    } else {
        std::thread::sleep(random.delay(undisturbed * 11 / 10));
    }
    let _ = child.kill();
    child.wait().unwrap();
    await_orphans_gone(trial.project.root());
}

fn ledger_text(project: &Project) -> String {
    std::fs::read_to_string(project.root().join(".pipe/ledger/svc/staging.json"))
        .unwrap_or_default()
}

/// The audit chain verifies and the environment's lock is free.
fn check_crash_invariants(trial: &Trial) {
    let verify = trial.project.pipe("unused", &["audit", "verify"]);
    assert_eq!(
        code(&verify),
        0,
        "trial {}: audit verify\n{}",
        trial.index,
        text(&verify)
    );
    let lock = trial.project.root().join(".pipe/locks/svc.staging.lock");
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock) {
        let held = Flock::lock(file, FlockArg::LockExclusiveNonblock);
        assert!(
            held.is_ok(),
            "trial {}: the lock is still held",
            trial.index
        );
    }
}

fn check_state_parses(project: &Project) {
    let Ok(runs) = std::fs::read_dir(project.root().join(".pipe/runs")) else {
        return;
    };
    for run in runs {
        let path = run.unwrap().path().join("state.json");
        if let Ok(bytes) = std::fs::read(&path) {
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
            assert!(parsed.is_ok(), "{} does not parse", path.display());
        }
    }
}

/// Right after the crash: the ledger agrees with the environment, or says the state is
/// unknown (and `pipe releases` says so too).
fn state_after_crash(trial: &Trial) -> Seen {
    match agreement(&trial.project) {
        Ok(()) => Seen::Agreed,
        Err(Disagreement::Unknown(status)) => {
            let releases = trial.project.pipe("unused", &["releases", "staging"]);
            assert!(
                text(&releases).contains("state unknown"),
                "trial {}: ledger says {status} but `pipe releases` does not say unknown\n{}",
                trial.index,
                text(&releases)
            );
            Seen::Recovered
        }
        Err(Disagreement::Wrong(why)) => panic!("trial {}: {why}", trial.index),
    }
}

/// `pipe resume` of the newest run: true when accepted (exit 0, or 1 for the bad release
/// rolled back), false when refused with a reason (exit 2 and a message).
fn resume(trial: &Trial) -> bool {
    let runs = trial.project.root().join(".pipe/runs");
    let mut ids: Vec<String> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains("rollback"))
        .collect();
    ids.sort();
    let run = ids.pop().unwrap();
    let output = trial.project.pipe("unused", &["resume", &run]);
    match code(&output) {
        0 | 1 => true,
        2 => {
            assert!(
                String::from_utf8_lossy(&output.stderr).contains("error:"),
                "trial {}: refused without a reason\n{}",
                trial.index,
                text(&output)
            );
            false
        }
        other => panic!(
            "trial {}: resume exited {other}\n{}",
            trial.index,
            text(&output)
        ),
    }
}

/// `how` 0: `pipe rollback staging` (exit 0, or 1 when nothing is left to roll back to);
/// 1: a new promote of a good release (exit 0).
fn recover_with(trial: &Trial, how: usize) {
    let output = if how == 0 {
        trial
            .project
            .pipe("unused", &["rollback", "staging", "--approver", "ops"])
    } else {
        let release = format!("name=d{};error_rate=0%", trial.index);
        trial
            .project
            .pipe(&release, &["run", "--until", "staging.watch"])
    };
    let accepted = if how == 0 { [0, 1] } else { [0, 0] };
    assert!(
        accepted.contains(&code(&output)),
        "trial {}: recovery exited {}\n{}",
        trial.index,
        code(&output),
        text(&output)
    );
    if code(&output) == 1 {
        assert!(
            text(&output).contains("no stable release other than"),
            "trial {}: {}",
            trial.index,
            text(&output)
        );
    }
}

fn assert_agrees(trial: &Trial, when: &str) {
    if let Err(why) = agreement(&trial.project) {
        panic!("trial {} {when}: {why:?}", trial.index);
    }
}

#[derive(Debug)]
enum Disagreement {
    /// The ledger says the state is unknown (a deploy or rollback left in progress).
    Unknown(String),
    /// The ledger names a release the environment does not serve.
    Wrong(String),
}

/// The ledger's newest stable release is byte for byte what staging serves, or the ledger says
/// the state is unknown.
fn agreement(project: &Project) -> Result<(), Disagreement> {
    let text = ledger_text(project);
    let ledger: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Disagreement::Wrong(format!("the ledger does not parse: {e}")))?;
    let releases = ledger["releases"].as_array().cloned().unwrap_or_default();
    let status = |r: &serde_json::Value| r["status"].as_str().unwrap_or("").to_string();
    if let Some(open) = releases.iter().find(|r| status(r) == "rolling_back") {
        return Err(Disagreement::Unknown(status(open)));
    }
    if let Some(latest) = releases.last()
        && matches!(status(latest).as_str(), "deploying" | "failed")
    {
        return Err(Disagreement::Unknown(status(latest)));
    }
    let stable = releases.iter().rev().find(|r| status(r) == "stable");
    let serving = std::fs::read(project.env_dir("staging").join("current")).ok();
    match (stable, serving) {
        (Some(release), Some(bytes)) => {
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
            if release["digest"] == digest.as_str() {
                Ok(())
            } else {
                Err(Disagreement::Wrong(format!(
                    "the ledger says {} is stable, staging serves {digest} ({})\n{text}",
                    release["digest"],
                    String::from_utf8_lossy(&bytes).trim()
                )))
            }
        }
        (None, None) => Ok(()),
        (stable, serving) => Err(Disagreement::Wrong(format!(
            "stable {stable:?}, serving {serving:?}"
        ))),
    }
}

fn assert_ok(output: &Output) {
    assert_eq!(code(output), 0, "{}", text(output));
}
