//! One job node from start to result: environment, secrets, its steps through the step runner,
//! typed outputs from `$PIPE_OUTPUT`, and the artifacts it produces.

use crate::compile::plan::{Literal, Node, Plan, Template};
use crate::run::artifact::{ArtifactRecord, Provenance, Replaced, Stored};
use crate::run::error::{EnvError, JobError};
use crate::run::eval::{self, Bindings};
use crate::run::process::{BlockOutcome, BlockRequest, StepRunner};
use crate::run::redact::Redactor;
use crate::run::secrets::SecretValues;
use crate::store::Artifacts;
use crate::syntax::ast::Type;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Everything a job task needs, owned so it can run in its own tokio task.
pub struct JobContext {
    pub plan: Arc<Plan>,
    pub runner: Arc<StepRunner>,
    pub secrets: Arc<SecretValues>,
    pub store: Arc<dyn Artifacts>,
    pub pipeline_dir: PathBuf,
    pub pipeline_env: BTreeMap<String, String>,
    pub bindings: Bindings,
    pub provenance: Provenance,
}

/// A finished job. `message` is redacted and says why when the job did not succeed.
#[derive(Debug, Clone, Default)]
pub struct JobResult {
    pub succeeded: bool,
    pub interrupted: bool,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub attempts: u32,
    pub outputs: BTreeMap<String, Literal>,
    /// Outputs that held a secret, kept only as `***`.
    pub redacted_outputs: BTreeSet<String>,
    /// What the job produced, stored.
    pub artifacts: Vec<ArtifactRecord>,
    /// Corrupt objects found under a produced digest, set aside and replaced.
    pub replaced: Vec<Replaced>,
}

/// Runs the plan's node at `index` (a job).
pub async fn run_job(context: JobContext, index: usize) -> JobResult {
    let plan = Arc::clone(&context.plan);
    let node = &plan.nodes[index];
    let failed = |message: JobError| JobResult {
        message: Some(
            context
                .runner
                .redactor
                .text(&format!("job `{}` failed: {message}", node.id)),
        ),
        ..JobResult::default()
    };
    let env = match evaluate_env(&context.pipeline_env, &node.env, &context.bindings) {
        Ok(env) => env,
        Err(e) => return failed(e.into()),
    };
    let secrets = match context.secrets.select(&node.secrets) {
        Ok(secrets) => secrets,
        Err(e) => return failed(e.into()),
    };
    let workdir = match confined_workdir(&context.pipeline_dir, node) {
        Ok(workdir) => workdir,
        Err(e) => return failed(e),
    };
    let request = BlockRequest {
        node: node.id.clone(),
        steps: node.steps.clone(),
        timeout: node.timeout_s.map(Duration::from_secs),
        retries: node.retries,
        backoff: node.backoff_ms.map(Duration::from_millis),
        shell: node.shell.clone(),
        workdir,
        env,
        pipe_env: BTreeMap::new(),
        secrets,
        inherit_env: node.inherit_env.clone(),
        bindings: context.bindings.clone(),
        capture_stdout: false,
    };
    let block = context.runner.run_block(&request).await;
    let mut result = JobResult {
        exit_code: block.exit_code,
        duration_ms: block.duration.as_millis() as u64,
        attempts: block.attempts,
        ..JobResult::default()
    };
    let see_log = block
        .log_path
        .as_deref()
        .map(|path| format!(" (see {})", display_path(path)))
        .unwrap_or_default();
    let redactor = &context.runner.redactor;
    match block.outcome {
        BlockOutcome::Succeeded => {}
        BlockOutcome::Interrupted => {
            result.interrupted = true;
            result.message = Some(format!("job `{}` was interrupted", node.id));
            return result;
        }
        BlockOutcome::Failed(why) => {
            result.message =
                Some(redactor.text(&format!("job `{}` failed: {why}{see_log}", node.id)));
            return result;
        }
    }
    match parse_outputs(&block.output_file, &node.outputs, redactor) {
        Ok(parsed) => {
            result.outputs = parsed.values;
            result.redacted_outputs = parsed.redacted;
        }
        Err(why) => {
            result.message = Some(redactor.text(&format!("job `{}` failed: {why}", node.id)));
            return result;
        }
    }
    match store_artifacts(&context, node).await {
        Ok(stored) => {
            result.replaced = stored.iter().filter_map(|s| s.replaced.clone()).collect();
            result.artifacts = stored.into_iter().map(|s| s.record).collect();
        }
        Err(why) => {
            result.message = Some(redactor.text(&format!("job `{}` failed: {why}", node.id)));
            return result;
        }
    }
    result.succeeded = true;
    result
}

async fn store_artifacts(context: &JobContext, node: &Node) -> Result<Vec<Stored>, JobError> {
    let mut stored = Vec::new();
    for name in &node.produces {
        let Some(artifact) = context.plan.artifacts.get(name) else {
            return Err(JobError::UndeclaredArtifact(name.clone()));
        };
        let source = context.pipeline_dir.join(&artifact.path);
        let store = context.store.clone();
        let provenance = context.provenance.clone();
        let artifact_name = name.clone();
        let workspace = Some(context.pipeline_dir.clone()).filter(|_| !artifact.outside_workspace);
        // Hashing and copying a large tree is blocking work.
        let record = tokio::task::spawn_blocking(move || {
            store.put(&artifact_name, &source, &provenance, workspace.as_deref())
        })
        .await
        .map_err(|source| JobError::ArtifactTask {
            name: name.clone(),
            source,
        })?
        .map_err(|source| JobError::ArtifactUnstored {
            name: name.clone(),
            path: artifact.path.clone(),
            source,
        })?;
        stored.push(record);
    }
    Ok(stored)
}

/// Whether any of the node's strings has a `${{ }}` hole (else it needs no bindings, which
/// spares a copy of them per job in large plans).
pub fn reads_bindings(node: &Node) -> bool {
    let has_hole = |template: &Template| {
        template
            .parts
            .iter()
            .any(|part| matches!(part, crate::compile::plan::TemplatePart::Expr(_)))
    };
    node.steps.iter().any(|step| has_hole(&step.run)) || node.env.values().any(has_hole)
}

/// The pipeline's `env` overlaid with the item's, evaluated.
pub fn evaluate_env(
    pipeline_env: &BTreeMap<String, String>,
    item_env: &BTreeMap<String, Template>,
    bindings: &Bindings,
) -> Result<BTreeMap<String, String>, EnvError> {
    let mut env = pipeline_env.clone();
    for (name, template) in item_env {
        let value = eval::render(template, bindings).map_err(|source| EnvError {
            name: name.clone(),
            source,
        })?;
        env.insert(name.clone(), value);
    }
    Ok(env)
}

pub fn workdir(pipeline_dir: &Path, workdir: Option<&str>) -> PathBuf {
    match workdir {
        Some(dir) => pipeline_dir.join(dir),
        None => pipeline_dir.to_path_buf(),
    }
}

/// The job's working directory, refused when it resolves (symlinks included) outside the
/// pipeline's directory without `outside_workspace = true`: a plan file written by hand gets
/// the same confinement `pipe check` gives a `.pipe` file. A directory that does not exist is
/// left to the step runner, which reports it.
fn confined_workdir(pipeline_dir: &Path, node: &Node) -> Result<PathBuf, JobError> {
    let dir = workdir(pipeline_dir, node.workdir.as_deref());
    if node.outside_workspace {
        return Ok(dir);
    }
    let (Ok(resolved), Ok(workspace)) = (dir.canonicalize(), pipeline_dir.canonicalize()) else {
        return Ok(dir);
    };
    if resolved.starts_with(&workspace) {
        return Ok(dir);
    }
    Err(JobError::OutsideWorkspace {
        workdir: node.workdir.as_deref().unwrap_or(".").to_string(),
        resolved,
        workspace,
    })
}

/// A job's declared outputs, typed and redacted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedOutputs {
    pub values: BTreeMap<String, Literal>,
    /// Keys whose value held a secret: what is kept is the mask, not the value.
    pub redacted: BTreeSet<String>,
}

/// Parses `key=value` lines (the last value of a key wins) and type-checks the declared keys.
/// Undeclared keys are ignored. Values are redacted before they are kept.
pub fn parse_outputs(
    text: &str,
    declared: &BTreeMap<String, Type>,
    redactor: &Redactor,
) -> Result<ParsedOutputs, JobError> {
    let mut raw: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            raw.insert(key.trim(), value);
        }
    }
    let mut outputs = ParsedOutputs::default();
    for (key, ty) in declared {
        let Some(value) = raw.get(key.as_str()) else {
            return Err(JobError::MissingOutput(key.clone()));
        };
        let literal = eval::parse_typed(value, ty).map_err(|source| JobError::IllTypedOutput {
            key: key.clone(),
            source,
        })?;
        let literal = match literal {
            Literal::String(text) => {
                let shown = redactor.text(&text);
                if shown != text {
                    outputs.redacted.insert(key.clone());
                }
                Literal::String(shown)
            }
            other => other,
        };
        outputs.values.insert(key.clone(), literal);
    }
    Ok(outputs)
}

/// A path as the user should read it: relative to the current directory when below it.
pub fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_typed_and_redacted() {
        let declared = BTreeMap::from([
            ("coverage".to_string(), Type::Percent),
            ("note".to_string(), Type::String),
        ]);
        let redactor = Redactor::new(["hunter2"]);
        let outputs = parse_outputs(
            "coverage=80%\nnote=pw hunter2\ncoverage=83.5%\n",
            &declared,
            &redactor,
        )
        .unwrap();
        assert_eq!(outputs.values["coverage"], Literal::Percent(83.5));
        assert_eq!(outputs.values["note"], Literal::String("pw ***".into()));
        assert_eq!(outputs.redacted, BTreeSet::from(["note".to_string()]));
    }

    #[test]
    fn a_missing_or_ill_typed_output_is_named() {
        let declared = BTreeMap::from([("coverage".to_string(), Type::Percent)]);
        let redactor = Redactor::default();
        let missing = parse_outputs("", &declared, &redactor)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("`coverage` was not written"), "{missing}");
        let wrong = parse_outputs("coverage=lots", &declared, &redactor)
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("output `coverage`") && wrong.contains("not a percent"),
            "{wrong}"
        );
    }
}
