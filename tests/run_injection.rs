#![allow(clippy::unwrap_used)]
//! `${{ }}` values reach shell commands as data: hostile job outputs, branch names, versions,
//! matrix values, environment attributes and probe commands run through the real binary, and
//! each test checks that no stray file was created and the value arrived byte for byte.

#[path = "support/run_harness.rs"]
mod harness;

use harness::Project;
use std::path::Path;
use std::process::Command;

/// Values that break out of every naive quoting. `PWNED` marks the file they try to create.
const HOSTILE: &[&str] = &[
    "$(touch PWNED)",
    "`touch PWNED`",
    "x';touch PWNED;'",
    "x\";touch PWNED;\"",
    "a b\\ * ? [x] ~ # ; & | < > ( ) { } $HOME ${IFS} \\$ \\\\",
];

/// `pipe ARGS` with one extra environment variable: the exit code and both streams.
fn run_with(project: &Project, args: &[&str], var: &str, value: &str) -> (i32, String) {
    let run = project.command(args).env(var, value).output().unwrap();
    let all =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    (run.status.code().unwrap_or(-1), all)
}

/// The marker files an injection would leave, relative to the project.
fn pwned(project: &Project) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(project.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.contains("PWNED") || name == "p" || name == "pwned" {
            found.push(name);
        }
    }
    found
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {status:?}");
}

/// Commits the project and checks out `branch`.
fn on_branch(project: &Project, branch: &str) {
    git(project.path(), &["init", "-q", "-b", "main"]);
    git(project.path(), &["add", "-A"]);
    git(project.path(), &["commit", "-q", "-m", "init"]);
    git(project.path(), &["checkout", "-q", "-b", branch]);
}

#[test]
fn hostile_job_outputs_arrive_as_data_in_every_quoting() {
    for (index, value) in HOSTILE.iter().enumerate() {
        let project = Project::new(
            r#"pipeline p {
                 job a {
                   run "printf 'x=' >> \"$PIPE_OUTPUT\"; cat value.txt >> \"$PIPE_OUTPUT\""
                   outputs { x: string }
                 }
                 job b {
                   run "printf '%s' ${{ jobs.a.outputs.x }} > bare.out"
                   run "printf '%s' \"${{ jobs.a.outputs.x }}\" > double.out"
                   run "printf '%s' 'v=${{ jobs.a.outputs.x }}' > single.out"
                   run "printf '%s' \"$(printf '%s' ${{ jobs.a.outputs.x }})\" > nested.out"
                 }
               }"#,
        );
        project.write("value.txt", value);
        let run = project.run(&["run"]);
        assert_eq!(run.code(), 0, "value {index}: {}", run.all());
        assert_eq!(project.read("bare.out"), *value);
        assert_eq!(project.read("double.out"), *value);
        assert_eq!(project.read("single.out"), format!("v={value}"));
        assert_eq!(project.read("nested.out"), *value);
        assert_eq!(pwned(&project), Vec::<String>::new(), "value {index}");
    }
}

/// A branch name flows through `git.branch`, `version` and `artifact.version` into a deploy.
#[test]
fn hostile_branch_names_reach_build_and_deploy_as_data() {
    for branch in ["$(touch${IFS}pwned)", "x';touch${IFS}p;'"] {
        let project = Project::new(
            r#"pipeline p {
                 version = "v-${{ git.branch }}"
                 artifact app { path = "app.txt" }
                 environment staging { url = "ENV" }
                 job build {
                   run "printf '%s' ${{ git.branch }} > branch.out; echo app > app.txt"
                   produces = [app]
                 }
                 promote staging {
                   after    = [build]
                   artifact = app
                   deploy   { run "printf '%s' ${{ artifact.version }} > deployed.out" }
                   smoke    { run "printf '%s' \"${{ pipeline.version }}\" > smoke.out" }
                   rollback { run "true" }
                 }
               }"#,
        );
        on_branch(&project, branch);
        let run = project.run(&["run"]);
        assert_eq!(run.code(), 0, "{branch}: {}", run.all());
        assert_eq!(project.read("branch.out"), branch);
        assert_eq!(project.read("deployed.out"), format!("v-{branch}"));
        assert_eq!(project.read("smoke.out"), format!("v-{branch}"));
        assert_eq!(pwned(&project), Vec::<String>::new(), "{branch}");
    }
}

#[test]
fn dry_run_prints_the_quoted_command_that_would_run() {
    let project = Project::new(
        r#"pipeline p {
             job build { run "printf '%s' ${{ git.branch }} > \"${{ git.branch }}.out\"" }
           }"#,
    );
    on_branch(&project, "x';touch${IFS}p;'");
    let run = project.run(&["run", "--dry-run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    let expected = r#"$ printf '%s' 'x'\'';touch${IFS}p;'\''' > "x';touch\${IFS}p;'.out""#;
    assert!(run.stdout().contains(expected), "{}", run.all());
    assert!(project.runs().is_empty(), "a dry run created a run");
    let real = project.run(&["run"]);
    assert_eq!(real.code(), 0, "{}", real.all());
    assert_eq!(project.read("x';touch${IFS}p;'.out"), "x';touch${IFS}p;'");
    assert_eq!(pwned(&project), Vec::<String>::new());
}

#[test]
fn run_id_matrix_values_and_environment_attributes_arrive_byte_exact() {
    let project = Project::new(
        r#"pipeline p {
             artifact app { path = "app.txt" }
             environment staging { url = "u';touch PWNED;'$(touch PWNED)" }
             job ids { run "printf '%s' ${{ run.id }} > run_id.out" }
             job m {
               matrix { target = ["a'b;touch PWNED", "$(touch PWNED)"] }
               run "printf '%s\n' ${{ matrix.target }} >> matrix.out"
             }
             job build { run "echo app > app.txt"  produces = [app] }
             promote staging {
               after    = [build]
               artifact = app
               deploy   { run "printf '%s' ${{ env.url }} > url.out" }
               smoke    { run "printf '%s' \"${{ env.url }}\" > smoke.out" }
               rollback { run "true" }
             }
           }"#,
    );
    let run = project.run(&["run", "--jobs", "1"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(project.read("run_id.out"), project.runs()[0]);
    let mut targets: Vec<String> = project
        .read("matrix.out")
        .lines()
        .map(String::from)
        .collect();
    targets.sort();
    assert_eq!(targets, ["$(touch PWNED)", "a'b;touch PWNED"]);
    assert_eq!(project.read("url.out"), "u';touch PWNED;'$(touch PWNED)");
    assert_eq!(project.read("smoke.out"), "u';touch PWNED;'$(touch PWNED)");
    assert_eq!(pwned(&project), Vec::<String>::new());
}

#[test]
fn probe_commands_in_a_watch_quote_their_values() {
    let project = Project::new(
        r#"pipeline p {
             artifact app { path = "app.txt" }
             environment staging { url = "$(touch PWNED)';touch PWNED;'" }
             job build { run "echo app > app.txt"  produces = [app] }
             promote staging {
               after    = [build]
               artifact = app
               deploy   { run "true" }
               smoke    { run "true" }
               watch 600ms {
                 probe seen: bool = command("printf '%s' ${{ env.url }} > probe.out") every 100ms
                 rollback when not seen
               }
               rollback { run "true" }
             }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 0, "{}", run.all());
    assert_eq!(project.read("probe.out"), "$(touch PWNED)';touch PWNED;'");
    assert_eq!(pwned(&project), Vec::<String>::new());
}

#[test]
fn a_redacted_output_fails_the_step_instead_of_running_with_the_mask() {
    let project = Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_TOKEN") }
             job a {
               secrets = [token]
               run "echo \"tok=$TOKEN\" >> \"$PIPE_OUTPUT\""
               outputs { tok: string }
             }
             job b { run "printf '%s' ${{ jobs.a.outputs.tok }} > used.out" }
           }"#,
    );
    let (code, all) = run_with(&project, &["run"], "PIPE_TEST_TOKEN", "hunter2-secret");
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("`jobs.a.outputs.tok` held a secret and was redacted"),
        "{all}"
    );
    assert!(
        !project.path().join("used.out").exists(),
        "the step ran with the mask"
    );
    assert!(!all.contains("hunter2-secret"), "{all}");
    assert_eq!(project.node_status("b"), "failed");
}

#[test]
fn a_hole_where_no_quoting_is_safe_is_refused_before_anything_runs() {
    let project = Project::new(
        r#"pipeline p {
             job first { run "touch first.out" }
             job a {
               run """
                 cat > notes.txt <<EOF
                 branch ${{ git.branch }}
                 EOF
                 """
             }
           }"#,
    );
    let run = project.run(&["run"]);
    assert_eq!(run.code(), 2, "{}", run.all());
    assert!(run.all().contains("E0504"), "{}", run.all());
    assert!(
        run.all().contains("inside a here-document body"),
        "{}",
        run.all()
    );
    assert!(!project.path().join("first.out").exists());
    assert!(!project.path().join("notes.txt").exists());
}

/// A stub on PATH that records each argument on its own line, NUL-terminated.
fn stub(project: &Project, tool: &str) {
    project.write(
        &format!("bin/{tool}"),
        &format!("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> {tool}.args\n"),
    );
    let path = project.path().join("bin").join(tool);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn args_of(project: &Project, tool: &str) -> Vec<String> {
    project
        .read(&format!("{tool}.args"))
        .split_terminator('\0')
        .map(String::from)
        .collect()
}

fn path_with_stubs(project: &Project) -> String {
    format!(
        "{}:{}",
        project.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn std_k8s_passes_hostile_branch_names_to_kubectl_intact() {
    let branch = "x';touch${IFS}p;'$(touch${IFS}pwned)";
    let project = Project::new(
        r#"import "std/k8s"
           pipeline p {
             job set = k8s_set_image(
               deployment: "web", container: "app",
               image: "registry.example/app:${{ git.branch }}", namespace: "it's")
             job status = k8s_rollout_status(deployment: "${{ git.branch }}") { needs = [set] }
           }"#,
    );
    stub(&project, "kubectl");
    on_branch(&project, branch);
    let (code, all) = run_with(
        &project,
        &["run", "--jobs", "1"],
        "PATH",
        &path_with_stubs(&project),
    );
    assert_eq!(code, 0, "{all}");
    let image = format!("app=registry.example/app:{branch}");
    let deployment = format!("deployment/{branch}");
    let expected: Vec<&str> = vec![
        "--namespace",
        "it's",
        "set",
        "image",
        "deployment/web",
        &image,
        "--namespace",
        "default",
        "rollout",
        "status",
        &deployment,
        "--timeout=5m",
    ];
    assert_eq!(args_of(&project, "kubectl"), expected);
    assert_eq!(pwned(&project), Vec::<String>::new());
}

#[test]
fn std_sqlite_refuses_a_backup_path_sqlite3_would_misread() {
    let project = Project::new(
        r#"import "std/sqlite"
           pipeline p {
             job backup = sqlite_backup(database: "data/app.db", backup: "backups/${{ git.branch }}.db")
           }"#,
    );
    stub(&project, "sqlite3");
    on_branch(&project, "x';touch${IFS}p;'");
    let (code, all) = run_with(&project, &["run"], "PATH", &path_with_stubs(&project));
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("sqlite3 cannot take a backup path holding a quote"),
        "{all}"
    );
    assert!(args_of(&project, "sqlite3").is_empty());
    assert_eq!(pwned(&project), Vec::<String>::new());
}

#[test]
fn a_redacted_output_in_a_deploy_env_fails_the_deploy() {
    let project = Project::new(
        r#"pipeline p {
             secret token { from = env("PIPE_TEST_TOKEN") }
             artifact app { path = "app.txt" }
             environment staging { url = "ENV" }
             job build {
               secrets = [token]
               run "echo app > app.txt; echo \"tok=$TOKEN\" >> \"$PIPE_OUTPUT\""
               outputs { tok: string }
               produces = [app]
             }
             promote staging {
               after    = [build]
               artifact = app
               deploy   { env { T = "${{ jobs.build.outputs.tok }}" }  run "printf '%s' \"$T\" > t.out" }
               smoke    { run "true" }
               rollback { run "true" }
             }
           }"#,
    );
    let (code, all) = run_with(&project, &["run"], "PIPE_TEST_TOKEN", "hunter2-secret");
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("env `T`: `jobs.build.outputs.tok` held a secret"),
        "{all}"
    );
    assert!(
        !project.path().join("t.out").exists(),
        "the deploy ran with the mask"
    );
}

/// Every stdlib template with a string parameter, each given a value that carries a hostile
/// branch name: whatever the tools answer, no command ran that the template did not say, and
/// the branch reached the tool byte for byte. (`std/k8s` and `std/sqlite` have their own tests
/// above; `git` is the real one, since `pipe` itself reads the branch with it.)
#[test]
fn every_stdlib_template_passes_hostile_branch_names_as_data() {
    let branch = "x';touch${IFS}p;'$(touch${IFS}pwned)`touch${IFS}PWNED`";
    let project = Project::new(
        r#"import "std/docker"
           import "std/git"
           import "std/http"
           import "std/postgres"
           import "std/rust"
           import "std/sqlite"
           pipeline p {
             job d1 = docker_build(image: "app-${{ git.branch }}", tag: "${{ git.branch }}")
             job d2 = docker_tag_digest(image: "app-${{ git.branch }}", tag: "${{ git.branch }}")
             job d3 = docker_push(image: "app-${{ git.branch }}", tag: "${{ git.branch }}", retries: 0)
             job g1 = git_on_branch(branch: "${{ git.branch }}")
             job g2 = git_tag_release(tag: "v-${{ git.branch }}", message: "${{ git.branch }}", remote: "${{ git.branch }}")
             job h1 = http_check(url: "http://127.0.0.1:9/${{ git.branch }}", retries: 0)
             job h2 = http_contains(url: "http://127.0.0.1:9/${{ git.branch }}", text: "${{ git.branch }}", retries: 0)
             job h3 = http_latency(url: "http://127.0.0.1:9/${{ git.branch }}", samples: 1)
             job p1 = postgres_backup(database: "${{ git.branch }}", backup: "b-${{ git.branch }}.dump")
             job p2 = postgres_restore(database: "${{ git.branch }}", backup: "b-${{ git.branch }}.dump")
             job p3 = postgres_verify(database: "${{ git.branch }}", query: "${{ git.branch }}", expect: "${{ git.branch }}")
             job r1 = cargo_build(profile: "release", flags: "--features=${{ git.branch }}")
             job r2 = cargo_test(flags: "${{ git.branch }}")
             job r3 = clippy(flags: "${{ git.branch }}")
             job s1 = sqlite_verify(database: "${{ git.branch }}.db", query: "${{ git.branch }}", expect: "${{ git.branch }}")
           }"#,
    );
    for tool in [
        "docker",
        "curl",
        "pg_dump",
        "pg_restore",
        "psql",
        "cargo",
        "sqlite3",
    ] {
        stub(&project, tool);
    }
    on_branch(&project, branch);
    let (code, all) = run_with(
        &project,
        &["run", "--jobs", "1"],
        "PATH",
        &path_with_stubs(&project),
    );
    // Stubs print nothing, so checks that expect an answer fail: that is fine, injection is not.
    assert!(code == 0 || code == 1, "{all}");
    assert_eq!(pwned(&project), Vec::<String>::new(), "{all}");
    for tool in [
        "docker",
        "curl",
        "pg_dump",
        "pg_restore",
        "psql",
        "cargo",
        "sqlite3",
    ] {
        let args = args_of(&project, tool);
        assert!(
            args.iter().any(|arg| arg.contains(branch)),
            "{tool} never received the branch intact: {args:?}\n{all}"
        );
    }
    let tags = Command::new("git")
        .args(["tag", "--list"])
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains(&format!("v-{branch}")),
        "git_tag_release did not tag v-BRANCH: {all}"
    );
}
