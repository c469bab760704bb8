//! One line of documentation for each word of the language (attribute keys, blocks,
//! statements, the roots of names), with its value type: hover shows it and completion uses
//! the type for its snippet (a duration or percent placeholder shows its unit).

/// `(word, type or shape, doc)`.
pub const WORDS: &[(&str, &str, &str)] = &[
    (
        "version",
        "string",
        "The release name, e.g. `api-${{ date }}-${{ git.short_sha }}`.",
    ),
    (
        "needs",
        "list<job|stage|gate>",
        "Items that must succeed first; their outputs become readable.",
    ),
    (
        "after",
        "list<job|stage|gate|promote>",
        "Items that must finish before this one starts.",
    ),
    (
        "timeout",
        "duration",
        "How long a step may run before it is stopped, e.g. `10m`.",
    ),
    (
        "retries",
        "number",
        "How many times a failed step is run again.",
    ),
    (
        "backoff",
        "duration",
        "The wait before each retry, e.g. `2s`.",
    ),
    (
        "secrets",
        "list<secret>",
        "The secrets this item receives, each as an upper-case environment variable.",
    ),
    (
        "produces",
        "list<artifact>",
        "The artifacts this job builds; each is stored immutable and content-addressed.",
    ),
    (
        "when",
        "bool expression",
        "Skips the item (for a promote, everything after it) when false.",
    ),
    (
        "shell",
        "string",
        "The shell each `run` goes through (default `/bin/sh -ec`).",
    ),
    (
        "workdir",
        "string",
        "The directory the job's steps run in, relative to the pipeline file.",
    ),
    (
        "outside_workspace",
        "bool",
        "Allows a path outside the workspace (refused by default).",
    ),
    (
        "inherit_env",
        "list<string>",
        "Host environment variables the job's processes keep.",
    ),
    (
        "scope",
        "list<environment>",
        "The environments a secret may be used in (anywhere when absent).",
    ),
    (
        "from",
        "env(\"NAME\") | file(\"path\")",
        "Where a secret's value is read at run time; never stored in the plan.",
    ),
    (
        "path",
        "string",
        "The artifact's file or directory, relative to the pipeline file.",
    ),
    (
        "protected",
        "bool",
        "A protected environment needs an approval and a staging release first.",
    ),
    (
        "extends",
        "environment",
        "Inherits the attributes of another environment.",
    ),
    (
        "approvers",
        "list<string>",
        "Who may approve a promote to this environment.",
    ),
    (
        "quorum",
        "number",
        "How many distinct approvers are needed.",
    ),
    (
        "allow_self",
        "bool",
        "Whether the person who started the run may approve it.",
    ),
    (
        "kind",
        "expand | contract",
        "`expand` keeps the previous release working; `contract` removes what it needed.",
    ),
    (
        "steps",
        "list<percent>",
        "Canary weights, in order, e.g. `[10%, 50%, 100%]`.",
    ),
    ("pause", "duration", "The wait between rollout steps."),
    (
        "rto",
        "duration",
        "Recovery time objective: the restore must finish within it.",
    ),
    (
        "rpo",
        "duration",
        "Recovery point objective: the backup may be at most this old.",
    ),
    (
        "environment",
        "environment",
        "The environment a drill restores.",
    ),
    (
        "artifact",
        "artifact",
        "The one artifact a promote deploys (`artifact.path` inside it).",
    ),
    (
        "pipeline",
        "block",
        "The pipeline: its items, `version` and `env`.",
    ),
    (
        "template",
        "item",
        "A job body with typed parameters: `job x = name(param: value)`.",
    ),
    (
        "import",
        "item",
        "Loads templates: `import \"std/rust\"` or a file relative to this one.",
    ),
    (
        "job",
        "item",
        "A unit of work: each `run` is one step, in order.",
    ),
    (
        "stage",
        "item",
        "A named group of jobs; naming it in `needs`/`after` means all its jobs.",
    ),
    (
        "gate",
        "item",
        "A decision point: `require` blocks on false, `warn` only reports.",
    ),
    (
        "promote",
        "item",
        "Deploys one artifact to one environment, watched, with a rollback.",
    ),
    (
        "drill",
        "item",
        "A restore drill run on demand with `pipe drill NAME`: backup, restore, verify.",
    ),
    (
        "secret",
        "item",
        "A value only the items naming it in `secrets` receive.",
    ),
    (
        "env",
        "block | name",
        "A block of environment variables; in a promote, `env.KEY` reads the environment's attributes.",
    ),
    (
        "outputs",
        "block",
        "Typed values a job writes for later items: `coverage: number`.",
    ),
    (
        "matrix",
        "block | name",
        "Expands a job into one job per combination; `matrix.KEY` reads the current one.",
    ),
    (
        "approval",
        "block",
        "Who must approve a promote before it deploys.",
    ),
    (
        "migrate",
        "block",
        "A database migration run before the deploy (`kind = expand | contract`).",
    ),
    (
        "rollout",
        "block | name",
        "`rollout canary { steps = [..] }`; `rollout.weight` and `rollout.step` inside `deploy`.",
    ),
    (
        "deploy",
        "block",
        "The steps that deploy `artifact.path` to the environment.",
    ),
    (
        "smoke",
        "block",
        "Checks run right after the deploy; a failure rolls back.",
    ),
    (
        "watch",
        "block",
        "`watch 5m { probe …  rollback when … }`: watches the release for a while.",
    ),
    (
        "rollback",
        "block",
        "The steps that redeploy `previous.path`, the last stable release.",
    ),
    ("backup", "block", "The drill's backup step."),
    (
        "restore",
        "block",
        "The drill's restore step, timed against the RTO.",
    ),
    (
        "verify",
        "block",
        "The drill's check that the restored data is good.",
    ),
    (
        "run",
        "statement | name",
        "A shell command, one step; `run.id` is the run's id.",
    ),
    ("require", "statement", "A gate blocks when this is false."),
    (
        "warn",
        "statement",
        "A gate reports (without blocking) when this is false; `warn when` in a watch.",
    ),
    (
        "rollback when",
        "statement",
        "`rollback when COND for D`: rolls the release back when COND holds for D.",
    ),
    (
        "warn when",
        "statement",
        "`warn when COND for D`: reports (without rolling back) when COND holds for D.",
    ),
    (
        "probe",
        "statement",
        "`probe NAME: TYPE = command(\"…\") every 10s`: a value watched during a release.",
    ),
    (
        "git",
        "name",
        "`git.sha`, `git.short_sha`, `git.branch`, `git.tag` (strings).",
    ),
    ("date", "string", "The run's date, `YYYY.MM.DD`."),
    (
        "jobs",
        "name",
        "`jobs.J.succeeded`, `.duration`, `.exit_code`, `.outputs.K` of a job upstream.",
    ),
    (
        "previous",
        "name",
        "`previous.path`, `.digest`, `.version`: the release a rollback redeploys.",
    ),
];

/// The type and doc of a word.
pub fn word(name: &str) -> Option<(&'static str, &'static str)> {
    WORDS
        .iter()
        .find(|(word, _, _)| *word == name)
        .map(|(_, ty, doc)| (*ty, *doc))
}

/// The fields after each root of a dotted name, for completion after `root.`.
pub fn fields(root: &str) -> &'static [&'static str] {
    match root {
        "git" => &["sha", "short_sha", "branch", "tag"],
        "run" => &["id"],
        "pipeline" => &["name", "version"],
        "artifact" | "previous" => &["path", "digest", "version"],
        "rollout" => &["weight", "step"],
        _ => &[],
    }
}

/// The fields of `jobs.J.` besides `outputs`.
pub const JOB_FIELDS: &[(&str, &str)] = &[
    ("succeeded", "bool"),
    ("duration", "duration"),
    ("exit_code", "number"),
    ("outputs", "its declared outputs"),
];
