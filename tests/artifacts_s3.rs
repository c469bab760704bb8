//! The artifact store on S3, against a real SeaweedFS server: objects written once by digest
//! beside their metadata, fetched into an agent-local cache and re-hashed; a whole delivery
//! whose artifact a second agent (another working directory, an empty cache) rolls back to;
//! a corrupted object refused with the artifact and the reason; S3 unreachable named.

#![allow(clippy::unwrap_used)]

#[path = "deliver_common/mod.rs"]
mod deliver_common;
#[path = "support/seaweed.rs"]
mod seaweed;

use deliver_common::{GOOD, GOOD2, Project, code, text};
use pipe::{ArtifactVerifyError, Artifacts, Provenance, S3Artifacts, S3Url};
use seaweed::Seaweed;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUCKET: &str = "artifacts";
const URL: &str = "s3://artifacts/team/svc";

fn env_vars(server: &Seaweed) -> Vec<(String, String)> {
    server
        .env()
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
}

fn s3_store(server: &Seaweed, cache: &Path) -> S3Artifacts {
    S3Artifacts::open_with_env(&S3Url::parse(URL).unwrap(), cache, env_vars(server)).unwrap()
}

fn provenance(run: &str) -> Provenance {
    Provenance {
        run_id: run.to_string(),
        ..Provenance::default()
    }
}

fn key_of(digest: &str) -> String {
    format!("team/svc/sha256/{}", digest.trim_start_matches("sha256:"))
}

#[test]
fn objects_are_written_once_by_digest_and_every_fetch_is_verified() {
    let server = Seaweed::start();
    server.create_bucket(BUCKET);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("app.bin");
    std::fs::write(&source, b"release one").unwrap();
    let site = work.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), b"<h1>one</h1>").unwrap();
    std::fs::write(site.join("css/main.css"), b"h1{}").unwrap();

    let builder = s3_store(&server, &work.path().join("agent-a/cache"));
    let file = builder
        .put("app", &source, &provenance("run-1"), None)
        .unwrap();
    let tree = builder
        .put("site", &site, &provenance("run-1"), None)
        .unwrap();
    let digest = file.record.digest.clone();
    assert_eq!(
        server.get_object(BUCKET, &key_of(&digest)).unwrap(),
        b"release one"
    );

    // Another agent, with an empty cache of its own, finds and fetches both.
    let other = s3_store(&server, &work.path().join("agent-b/cache"));
    assert_eq!(other.lookup(&digest).unwrap().run_id, "run-1");
    let fetched = other.materialise(&digest).unwrap();
    assert!(fetched.starts_with(work.path().join("agent-b/cache")));
    assert_eq!(std::fs::read(&fetched).unwrap(), b"release one");
    assert!(
        std::fs::metadata(&fetched)
            .unwrap()
            .permissions()
            .readonly()
    );
    let fetched_site = other.materialise(&tree.record.digest).unwrap();
    assert_eq!(
        std::fs::read(fetched_site.join("css/main.css")).unwrap(),
        b"h1{}"
    );

    // Called from inside a tokio runtime (as the runner's threads call it): the S3 client
    // runs on its own runtime, so this neither panics nor deadlocks on one worker.
    let inside = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh = s3_store(&server, &work.path().join("agent-d/cache"));
    let in_runtime = inside.block_on(async { fresh.materialise(&digest).map(std::fs::read) });
    assert_eq!(in_runtime.unwrap().unwrap(), b"release one");

    // The same digest again: nothing is rewritten, the first record stays.
    builder
        .put("app", &source, &provenance("run-2"), None)
        .unwrap();
    let record = server
        .get_object(BUCKET, &format!("{}.json", key_of(&digest)))
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["run_id"], "run-1");

    // Overwritten behind pipe's back: a fresh fetch refuses it, naming object and digests.
    server.put_object(BUCKET, &key_of(&digest), b"evil bytes");
    let third = s3_store(&server, &work.path().join("agent-c/cache"));
    let Err(ArtifactVerifyError::Mismatch(mismatch)) = third.materialise(&digest) else {
        panic!("a corrupted object must be refused");
    };
    assert_eq!(mismatch.expected, digest);
    assert_ne!(mismatch.found, digest);
    let message = mismatch.to_string();
    assert!(
        message.contains(&format!("s3://{BUCKET}/{}", key_of(&digest))),
        "{message}"
    );
    assert!(
        !third.local_path(&digest).exists(),
        "nothing unverified is left in the cache"
    );
}

/// A second agent: its own working directory with the project's files, the first agent's
/// state directory (shared), and an empty artifact cache.
struct Agent {
    dir: tempfile::TempDir,
    state_dir: PathBuf,
}

impl Agent {
    fn beside(project: &Project) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        for file in ["pipeline.pipe", "deploy.sh", "smoke.sh", "error_rate.sh"] {
            std::fs::copy(project.root().join(file), dir.path().join(file)).unwrap();
        }
        let state_dir = project.root().join(".pipe");
        let _ = std::fs::remove_dir_all(state_dir.join("artifacts/cache"));
        Agent { dir, state_dir }
    }

    /// `pipe rollback ENV` from this agent's directory, reaching S3 through `s3_env`.
    fn rollback(&self, s3_env: Vec<(&'static str, String)>, environment: &str) -> Output {
        let state = self.state_dir.display().to_string();
        Command::new(env!("CARGO_BIN_EXE_pipe"))
            .args(["rollback", environment, "--approver", "dave"])
            .args(["--state-dir", &state, "--artifacts", URL])
            .current_dir(self.dir.path())
            .envs(s3_env)
            .env("SVC_TOKEN", deliver_common::SECRET)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

fn release_on_s3(project: &Project, server: &Seaweed, release: &str) -> Output {
    project
        .command(
            release,
            &[
                "run",
                "--approve",
                "production",
                "--approver",
                "alice",
                "--artifacts",
                URL,
            ],
        )
        .envs(server.env())
        .output()
        .unwrap()
}

fn staging_digests(project: &Project) -> Vec<String> {
    project.ledger("staging")["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh server and a project that released GOOD, then GOOD2, with artifacts on S3.
fn two_releases_on_s3() -> (Seaweed, Project) {
    let server = Seaweed::start();
    server.create_bucket(BUCKET);
    let project = Project::new();
    for release in [GOOD, GOOD2] {
        let output = release_on_s3(&project, &server, release);
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    (server, project)
}

#[test]
fn a_release_built_on_one_agent_is_rolled_back_to_by_another() {
    let (server, project) = two_releases_on_s3();
    assert!(project.serving("staging").contains("name=good2"));
    let first = staging_digests(&project)[0].clone();
    assert!(
        server.get_object(BUCKET, &key_of(&first)).is_some(),
        "the build uploaded its artifact"
    );
    assert!(
        !project.root().join(".pipe/artifacts/sha256").exists(),
        "nothing went to the directory store"
    );

    let agent = Agent::beside(&project);
    let output = agent.rollback(server.env(), "staging");
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(
        project.serving("staging").contains("name=good\n"),
        "{}",
        project.serving("staging")
    );
    let cached = agent
        .state_dir
        .join("artifacts/cache/sha256")
        .join(first.trim_start_matches("sha256:"));
    assert!(
        cached.exists(),
        "agent B fetched the artifact into its cache"
    );
}

#[test]
fn a_corrupted_object_is_refused_and_the_rollback_names_it() {
    let (server, project) = two_releases_on_s3();
    let first = staging_digests(&project)[0].clone();
    server.put_object(BUCKET, &key_of(&first), b"name=evil\n");

    let agent = Agent::beside(&project);
    let output = agent.rollback(server.env(), "staging");
    let all = text(&output);
    assert_eq!(
        code(&output),
        4,
        "a refused rollback leaves the state unknown: {all}"
    );
    assert!(all.contains(&first), "names the artifact's digest: {all}");
    assert!(all.contains("changed after it was stored"), "{all}");
    assert!(
        all.contains(&format!("s3://{BUCKET}/{}", key_of(&first))),
        "{all}"
    );
    assert!(project.has_event("artifact_verification_failed"));
    assert!(project.serving("staging").contains("name=good2"));
}

#[test]
fn a_rollback_while_s3_is_unreachable_names_the_fetch_and_changes_nothing() {
    let (server, project) = two_releases_on_s3();
    let first = staging_digests(&project)[0].clone();
    let agent = Agent::beside(&project);
    let gone = server.env();
    drop(server);
    let output = agent.rollback(gone, "staging");
    let all = text(&output);
    assert_eq!(code(&output), 4, "{all}");
    assert!(
        all.contains(&format!("cannot fetch s3://{BUCKET}/{}", key_of(&first))),
        "{all}"
    );
    assert!(project.serving("staging").contains("name=good2"));
}

#[test]
fn an_unreachable_s3_server_fails_the_build_naming_the_upload() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let project = Project::new();
    let output = project
        .command(GOOD, &["run", "--artifacts", URL])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let all = text(&output);
    assert_eq!(code(&output), 1, "{all}");
    assert!(
        all.contains("cannot upload s3://artifacts/team/svc/sha256/"),
        "{all}"
    );
    assert!(!project.root().join("envs/staging/current").exists());
}

#[test]
fn an_s3_url_without_a_bucket_is_a_usage_error() {
    let project = Project::new();
    let output = project.pipe(GOOD, &["run", "--artifacts", "s3:///nothing"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(text(&output).contains("names no bucket"));
}

#[test]
fn a_directory_named_by_pipe_artifacts_holds_the_artifacts_of_every_agent() {
    let shared = tempfile::tempdir().unwrap();
    let project = Project::new();
    let release = |release: &str| {
        project
            .command(
                release,
                &["run", "--approve", "production", "--approver", "alice"],
            )
            .env("PIPE_ARTIFACTS", shared.path())
            .output()
            .unwrap()
    };
    for name in [GOOD, GOOD2] {
        let output = release(name);
        assert_eq!(code(&output), 0, "{}", text(&output));
    }
    let first = staging_digests(&project)[0].clone();
    let stored = shared
        .path()
        .join("sha256")
        .join(first.trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap(),
        "name=good\nerror_rate=0%\n"
    );
    assert!(!project.root().join(".pipe/artifacts/sha256").exists());

    let agent = Agent::beside(&project);
    let output = Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["rollback", "staging", "--approver", "dave"])
        .args(["--state-dir", &agent.state_dir.display().to_string()])
        .args(["--artifacts", &shared.path().display().to_string()])
        .current_dir(agent.dir.path())
        .env("SVC_TOKEN", deliver_common::SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(project.serving("staging").contains("name=good\n"));
}
