//! Tests of elaboration: each block form into the IR, and each diagnostic it emits.

use crate::check::program::{MigrationKind, SecretSource, Value};
use crate::check::testing::{check_source, check_with, codes, full_check, rendered};
use crate::syntax::ast::{Segment, Type};

/// The whole example of SPEC §2, with the real `std/rust`.
/// The whole example of SPEC §2, kept as a checked example pipeline.
const SPEC_EXAMPLE: &str = include_str!("../../../examples/rust-service/pipeline.pipe");

fn texts(steps: &[crate::syntax::ast::StrLit]) -> Vec<String> {
    steps
        .iter()
        .map(|step| {
            step.segments
                .iter()
                .map(|segment| match segment {
                    Segment::Text(text) => text.clone(),
                    Segment::Interp(_) => "${{…}}".to_string(),
                })
                .collect()
        })
        .collect()
}

fn names(idents: &[crate::syntax::ast::Ident]) -> Vec<&str> {
    idents.iter().map(|i| i.name.as_str()).collect()
}

/// Checks `source`, asserting it has no errors, and returns the program.
fn program(source: &str) -> crate::check::program::Program {
    let (checked, sources) = check_source(source);
    assert!(
        checked.program.is_some(),
        "{}",
        rendered(&checked, &sources)
    );
    checked.program.unwrap()
}

/// Checks a pipeline whose body is `body` and returns the diagnostics' codes and rendering.
fn problems(body: &str) -> (Vec<&'static str>, String) {
    let (checked, sources) = check_source(&format!("pipeline p {{\n{body}\n}}\n"));
    assert!(checked.program.is_none() || checked.diagnostics.iter().all(|d| !d.is_error()));
    (codes(&checked), rendered(&checked, &sources))
}

#[test]
fn the_spec_example_elaborates_into_the_program() {
    let program = program(SPEC_EXAMPLE);
    assert_eq!(program.name.name, "api");
    assert!(program.version.is_some());
    assert_eq!(
        names(
            &program
                .env
                .iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        ),
        ["RUST_BACKTRACE"]
    );

    let secret = &program.secrets[0];
    assert_eq!(secret.name.name, "deploy_token");
    assert_eq!(
        secret.source.value,
        SecretSource::Env("DEPLOY_TOKEN".into())
    );
    assert_eq!(
        names(secret.scope.as_deref().unwrap()),
        ["staging", "production"]
    );
    assert_eq!(program.artifacts[0].path.value, "target/release/api");

    let production = &program.environments[1];
    assert!(production.protected.value);
    assert!(!program.environments[0].protected.value);
    let keys: Vec<&str> = production
        .attrs
        .iter()
        .map(|(k, _)| k.name.as_str())
        .collect();
    assert_eq!(keys, ["replicas", "url"]);
    assert_eq!(production.attrs[0].1.value, Value::Number(3.0));

    let stage = &program.stages[0];
    assert_eq!(names(&stage.jobs), ["lint", "test", "package"]);
    let jobs: Vec<&str> = program.jobs.iter().map(|j| j.name.name.as_str()).collect();
    assert_eq!(jobs, ["lint", "test", "package"]);
    let lint = &program.jobs[0];
    assert_eq!(
        texts(&lint.steps),
        ["cargo clippy --all-targets -- -D warnings"]
    );
    assert_eq!(lint.settings.timeout.as_ref().unwrap().value, 15 * 60_000);
    assert_eq!(lint.template.as_ref().unwrap().template.name, "cargo");
    assert_eq!(lint.stage.as_ref().unwrap().name, "build");
    let test = &program.jobs[1];
    assert_eq!(texts(&test.steps), ["cargo test", "./scripts/coverage.sh"]);
    assert_eq!(test.settings.timeout.as_ref().unwrap().value, 600_000);
    assert_eq!(test.settings.retries.as_ref().unwrap().value, 1);
    assert_eq!(test.outputs[0].1.value, Type::Percent);
    let package = &program.jobs[2];
    assert_eq!(names(&package.needs), ["lint", "test"]);
    assert_eq!(names(&package.produces), ["api_bin"]);

    let gate = &program.gates[0];
    assert_eq!((gate.requires.len(), gate.warns.len()), (2, 1));
    assert_eq!(names(&gate.after), ["build"]);

    let staging = &program.promotes[0];
    assert_eq!(staging.environment.name, "staging");
    assert_eq!(staging.artifact.as_ref().unwrap().name, "api_bin");
    assert_eq!(
        staging
            .smoke
            .as_ref()
            .unwrap()
            .settings
            .retries
            .as_ref()
            .unwrap()
            .value,
        5
    );
    assert_eq!(
        staging
            .smoke
            .as_ref()
            .unwrap()
            .settings
            .backoff
            .as_ref()
            .unwrap()
            .value,
        1000
    );
    assert!(staging.rollout.is_none() && staging.approval.is_none() && staging.rollback.is_some());

    let production = &program.promotes[1];
    assert!(production.when.is_some());
    let approval = production.approval.as_ref().unwrap();
    let approvers: Vec<&str> = approval
        .approvers
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.value.as_str())
        .collect();
    assert_eq!(approvers, ["alice", "bob"]);
    assert_eq!(approval.quorum.value, 1);
    assert!(!approval.allow_self);
    assert_eq!(
        production.migrate.as_ref().unwrap().kind.value,
        MigrationKind::Expand
    );
    let rollout = production.rollout.as_ref().unwrap();
    assert_eq!(rollout.strategy.name, "canary");
    let steps: Vec<f64> = rollout.steps.iter().map(|s| s.value).collect();
    assert_eq!(steps, [10.0, 50.0, 100.0]);
    assert_eq!(rollout.pause.as_ref().unwrap().value, 30_000);
    let watch = production.watch.as_ref().unwrap();
    assert_eq!(watch.duration.value, 120_000);
    let probes: Vec<(&str, Type, u64)> = watch
        .probes
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty.value.clone(), p.every.value))
        .collect();
    assert_eq!(
        probes,
        [
            ("error_rate", Type::Percent, 5000),
            ("p95", Type::Duration, 5000),
            ("healthy", Type::Bool, 5000)
        ]
    );
    let windows: Vec<u64> = watch
        .rollback_when
        .iter()
        .map(|c| c.window.as_ref().unwrap().value)
        .collect();
    assert_eq!(windows, [30_000, 60_000, 15_000]);

    let drill = &program.drills[0];
    assert_eq!(drill.environment.as_ref().unwrap().name, "staging");
    assert_eq!(drill.rto.as_ref().unwrap().value, 120_000);
    assert_eq!(drill.rpo.as_ref().unwrap().value, 24 * 3_600_000);
    assert!(drill.backup.is_some() && drill.restore.is_some() && drill.verify.is_some());
}

#[test]
fn the_spec_example_passes_every_check() {
    let (checked, sources) = full_check(SPEC_EXAMPLE, &[]);
    assert!(
        checked.diagnostics.is_empty(),
        "{}",
        rendered(&checked, &sources)
    );
    assert!(checked.program.is_some());
}

#[test]
fn jobs_in_stages_inherit_the_stage_after_and_keep_source_order() {
    let program = program(
        r#"pipeline p {
  job first { run "a" }
  stage checks {
    after = [first]
    when = git.branch == "main"
    job lint { run "b"  after = [setup] }
  }
  job setup { run "c" }
  job last { run "d" }
}"#,
    );
    let jobs: Vec<&str> = program.jobs.iter().map(|j| j.name.name.as_str()).collect();
    assert_eq!(jobs, ["first", "lint", "setup", "last"]);
    assert_eq!(names(&program.jobs[1].after), ["setup", "first"]);
    assert!(program.jobs[0].stage.is_none());
    assert!(program.stages[0].when.is_some());
}

#[test]
fn every_job_attribute_is_read() {
    let program = program(
        r#"pipeline p {
  secret token { from = file("secrets/token") }
  artifact bin { path = "bin" }
  job build {
    run "make"
    needs = [a]
    after = [b]
    timeout = 1h30m
    retries = 2
    backoff = 250ms
    env { MODE = "fast"  TAG = "${{ git.sha }}" }
    secrets = [token]
    produces = [bin]
    outputs { size: number  ok: bool }
    when = not (git.tag == "")
    matrix { os = ["linux", "macos"]  version = [1, 2.5] }
    shell = "/bin/bash"
    workdir = "sub"
    inherit_env = ["SSH_AUTH_SOCK"]
  }
  job a { run "a" }
  job b { run "b" }
}"#,
    );
    let job = &program.jobs[0];
    assert_eq!(job.settings.timeout.as_ref().unwrap().value, 5_400_000);
    assert_eq!(job.settings.retries.as_ref().unwrap().value, 2);
    assert_eq!(job.settings.backoff.as_ref().unwrap().value, 250);
    assert_eq!(job.settings.env.len(), 2);
    assert_eq!(names(&job.secrets), ["token"]);
    assert_eq!(job.outputs.len(), 2);
    assert!(job.when.is_some());
    let matrix: Vec<(&str, Vec<&str>)> = job
        .matrix
        .iter()
        .map(|(key, values)| {
            (
                key.name.as_str(),
                values.iter().map(|v| v.value.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        matrix,
        [
            ("os", vec!["linux", "macos"]),
            ("version", vec!["1", "2.5"])
        ]
    );
    assert_eq!(job.shell.as_ref().unwrap().value, "/bin/bash");
    assert_eq!(job.workdir.as_ref().unwrap().value, "sub");
    assert_eq!(job.inherit_env[0].value, "SSH_AUTH_SOCK");
    assert_eq!(
        program.secrets[0].source.value,
        SecretSource::File("secrets/token".into())
    );
    assert!(program.secrets[0].scope.is_none());
}

#[test]
fn extends_inherits_attributes_and_protection_sorted_by_key() {
    let program = program(
        r#"pipeline p {
  environment base { url = "u"  replicas = 1  protected = true  region = "eu" }
  environment prod { extends = base  replicas = 3  timeout = 5m  ratio = 5%  tags = ["a", "b"] }
}"#,
    );
    let prod = &program.environments[1];
    assert_eq!(prod.extends.as_ref().unwrap().name, "base");
    assert!(prod.protected.value, "protection is inherited");
    let attrs: Vec<(&str, &Value)> = prod
        .attrs
        .iter()
        .map(|(k, v)| (k.name.as_str(), &v.value))
        .collect();
    assert_eq!(
        attrs,
        [
            ("ratio", &Value::Percent(5.0)),
            ("region", &Value::String("eu".into())),
            ("replicas", &Value::Number(3.0)),
            (
                "tags",
                &Value::List(vec![Value::String("a".into()), Value::String("b".into())])
            ),
            ("timeout", &Value::Duration(300_000)),
            ("url", &Value::String("u".into())),
        ]
    );
    assert_eq!(
        names(&prod.own_keys),
        ["replicas", "timeout", "ratio", "tags"]
    );
}

#[test]
fn unknown_and_cyclic_extends_are_reported() {
    let (codes, text) = problems(
        "environment a { extends = stagin }\nenvironment staging { extends = c }\nenvironment c { extends = staging }",
    );
    assert_eq!(codes, ["E0101", "E0301"], "{text}");
    assert!(text.contains("did you mean `staging`?"), "{text}");
    assert!(text.contains("staging → c → staging"), "{text}");
}

#[test]
fn promote_defaults_and_optional_blocks() {
    let program = program(
        r#"pipeline p {
  promote staging {
    artifact = bin
    approval { quorum = 2  allow_self = true }
    migrate { kind = contract  run "m"  timeout = 1m }
    deploy { run "d" }
    watch 1m {
      probe up: bool = command("true") every 1s
      warn when not up
    }
  }
}"#,
    );
    let promote = &program.promotes[0];
    let approval = promote.approval.as_ref().unwrap();
    assert!(approval.approvers.is_none());
    assert_eq!(approval.quorum.value, 2);
    assert!(approval.allow_self);
    let migrate = promote.migrate.as_ref().unwrap();
    assert_eq!(migrate.kind.value, MigrationKind::Contract);
    assert_eq!(
        migrate.block.settings.timeout.as_ref().unwrap().value,
        60_000
    );
    assert!(promote.rollout.is_none() && promote.rollback.is_none() && promote.smoke.is_none());
    let watch = promote.watch.as_ref().unwrap();
    assert_eq!(watch.warn_when.len(), 1);
    assert!(watch.warn_when[0].window.is_none());
}

#[test]
fn unknown_attributes_blocks_and_statements_are_e0103_with_suggestions() {
    let (codes, text) = problems(
        "job a {\n  run \"x\"\n  timout = 5m\n  require jobs.b.succeeded\n  probe x: bool = command(\"y\") every 1s\n}\ngate g { run \"z\" }",
    );
    assert_eq!(codes, ["E0103", "E0103", "E0103", "E0103"], "{text}");
    assert!(text.contains("did you mean `timeout`?"), "{text}");
    assert!(text.contains("`require` is not allowed in a job"), "{text}");
    assert!(text.contains("`probe` is not allowed in a job"), "{text}");
    assert!(text.contains("`run` is not allowed in a gate"), "{text}");
}

#[test]
fn a_block_written_as_an_attribute_says_so() {
    let (codes, text) = problems("job a { run \"x\"  env = \"y\" }");
    assert_eq!(codes, ["E0103"]);
    assert!(text.contains("`env` is a block here"), "{text}");
}

#[test]
fn duplicates_are_e0102_with_both_labelled() {
    let (codes, text) = problems(
        r#"job build { run "a"  timeout = 1m  timeout = 2m }
stage build { job inner { run "b" } }
gate inner { }
environment e { }
environment e { }
artifact x { path = "x" }
artifact x { path = "y" }
secret s { from = env("S") }
secret s { from = env("T") }
promote e { artifact = x  deploy { run "d" } }
promote e { artifact = x  deploy { run "d" }  deploy { run "e" } }
drill d { environment = e  rto = 1m  rpo = 1h  backup { run "b" }  restore { run "r" }  verify { run "v" } }
drill d { environment = e  rto = 1m  rpo = 1h  backup { run "b" }  restore { run "r" }  verify { run "v" } }"#,
    );
    assert_eq!(codes.len(), 9, "{text}");
    assert!(codes.iter().all(|c| *c == "E0102"), "{text}");
    assert!(
        text.contains("first defined here") && text.contains("defined again here"),
        "{text}"
    );
    assert!(
        text.contains("`build` is already the name of a job"),
        "{text}"
    );
    assert!(text.contains("environment `e` is promoted twice"), "{text}");
}

#[test]
fn missing_required_attributes_are_e0104_with_the_fix_in_context() {
    let (codes, text) = problems(
        r#"artifact bin { }
secret s { }
job empty { needs = [x] }
promote staging { }
drill d { }
promote prod {
  artifact = bin
  migrate { run "m" }
  deploy { }
  rollout canary { pause = 1s }
  watch 1m { probe up: bool = command("x") }
}"#,
    );
    assert!(codes.iter().all(|c| *c == "E0104"), "{text}");
    assert_eq!(codes.len(), 15, "{text}");
    assert!(
        text.contains("add `path = \"target/release/api\"` inside the artifact block"),
        "{text}"
    );
    assert!(
        text.contains("promote `staging` is missing `artifact`"),
        "{text}"
    );
    assert!(text.contains("drill `d` is missing `rto`"), "{text}");
    assert!(text.contains("probe `up` is missing `every`"), "{text}");
    assert!(text.contains("migrate block is missing `kind`"), "{text}");
}

#[test]
fn a_promote_without_rollback_is_left_to_the_rules() {
    let (checked, _) =
        check_source("pipeline p { promote s { artifact = a  deploy { run \"d\" } } }");
    assert!(!codes(&checked).contains(&"E0104"));
}

#[test]
fn wrong_value_types_are_e0201_with_a_fix() {
    let (codes, text) = problems(
        r#"job a {
  run "x"
  timeout = "10m"
  retries = 1.5
  needs = b
  shell = bash
  workdir = "${{ git.sha }}"
}
secret s { from = vault("x") }
environment e { url = git.sha }
promote e {
  artifact = "bin"
  migrate { kind = explode  run "m" }
  rollout canary { steps = [10, 100%] }
  deploy { run "d" }
  watch 1m {
    probe a: bool = "curl" every 1s
    probe b: bool = command("x") every "5s"
    rollback when a for 5
  }
}"#,
    );
    assert!(codes.iter().all(|c| *c == "E0201"), "{text}");
    assert_eq!(codes.len(), 13, "{text}");
    assert!(text.contains("expected duration, found string"), "{text}");
    assert!(text.contains("write 10m, not \"10m\""), "{text}");
    assert!(text.contains("write a list: `[b]`"), "{text}");
    assert!(text.contains("write it as a string: `\"bash\"`"), "{text}");
    assert!(text.contains("write bin, not \"bin\""), "{text}");
    assert!(text.contains("write 10%"), "{text}");
    assert!(
        text.contains("did you mean `expand`?") || text.contains("`contract`"),
        "{text}"
    );
    assert!(text.contains("expected `command(\"…\")`"), "{text}");
}

#[test]
fn no_pipeline_and_two_pipelines() {
    let (checked, _) = check_source("template t() { run \"x\" }");
    assert_eq!(codes(&checked), ["E0104"]);
    assert!(
        checked.diagnostics[0]
            .message
            .contains("no pipeline in pipeline.pipe")
    );
    let (checked, _) =
        check_source("pipeline a { job x { run \"x\" } }\npipeline b { job y { run \"y\" } }");
    assert_eq!(codes(&checked), ["E0102"]);
    assert!(checked.program.is_none());
}

#[test]
fn a_syntax_error_does_not_cascade_into_checks() {
    let (checked, _) = check_source("pipeline p { job { ");
    assert!(codes(&checked).contains(&"E0001"));
    assert!(codes(&checked).iter().all(|c| c.starts_with("E000")));
    assert!(checked.program.is_none());
}

#[test]
fn an_imported_file_may_not_hold_a_pipeline() {
    let (checked, sources) = check_with(
        "import \"./other.pipe\"\npipeline p { job x { run \"x\" } }",
        &[("other.pipe", "pipeline q { job y { run \"y\" } }")],
    );
    assert_eq!(
        codes(&checked),
        ["E0103"],
        "{}",
        rendered(&checked, &sources)
    );
}

#[test]
fn more_value_checks() {
    let (codes, text) = problems(
        r#"env { A = 1 }
environment e { protected = "yes" }
job j { run "x"  outputs { a: number  a: bool } }
promote e {
  artifact = a
  approval { quorum = 0  approvers = "alice" }
  rollout linear { steps = [100%] }
  deploy { run "d" }
}"#,
    );
    assert_eq!(
        codes,
        ["E0201", "E0201", "E0102", "E0201", "E0201", "E0201"],
        "{text}"
    );
    assert!(text.contains("write it as a string: `\"1\"`"), "{text}");
    assert!(text.contains("write `true` or `false`"), "{text}");
    assert!(text.contains("output `a` is declared twice"), "{text}");
    assert!(text.contains("quorum must be at least 1"), "{text}");
    assert!(text.contains("unknown rollout strategy `linear`"), "{text}");
}

#[test]
fn checking_never_panics_on_cut_sources() {
    let text = SPEC_EXAMPLE;
    let boundaries: Vec<usize> = (0..=text.len())
        .filter(|i| text.is_char_boundary(*i))
        .collect();
    for (index, cut) in boundaries.iter().enumerate().step_by(7) {
        let _ = check_source(&text[..*cut]);
        let resume = boundaries[(index + 40).min(boundaries.len() - 1)];
        let _ = full_check(&format!("{}{}", &text[..*cut], &text[resume..]), &[]);
    }
}

#[test]
fn broken_items_are_kept_so_their_users_are_not_reported_again() {
    let (checked, sources) = full_check(
        r#"pipeline p {
  secret s { }
  artifact bin { }
  environment staging { url = "u" }
  job build = nothing() { run "make"  produces = [bin] }
  job test { needs = [build]  run "t" }
  promote staging {
    artifact = bin
    secrets = [s]
    deploy { run "d" }
    smoke { run "s" }
    rollback { run "r" }
  }
}"#,
        &[],
    );
    let text = rendered(&checked, &sources);
    let unknown: Vec<&str> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == "E0101")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(unknown, ["unknown template `nothing`"], "{text}");
    assert_eq!(
        codes(&checked).iter().filter(|c| **c == "E0104").count(),
        2,
        "{text}"
    );
}

#[test]
fn block_heads_take_only_what_their_kind_takes() {
    let (codes, text) = problems(
        r#"promote e {
  artifact = a
  deploy now { run "d" }
  smoke 5m { run "s" }
  rollout canary 5m { steps = [100%] }
}"#,
    );
    assert_eq!(codes, ["E0103", "E0103", "E0103"], "{text}");
    assert!(
        text.contains("`deploy` takes no name or argument here"),
        "{text}"
    );
}
