//! Elaboration: interprets the generic blocks of a `pipeline` into the typed
//! [`Program`], validating every block's keys and values (E0102–E0104, E0201).

mod body;
mod items;
mod job;
mod promote;
pub(in crate::check) mod values;

use super::program::Program;
use super::templates::TemplateTable;
use crate::diagnostics::{Diagnostic, SourceMap, Span};
use crate::syntax::ast::{Block, Ident, Pipeline, Stmt};
use body::Schema;
use std::collections::HashMap;

/// Shared state of one elaboration: where values are read from and where problems go.
pub(super) struct Elaborator<'a> {
    sources: &'a SourceMap,
    templates: &'a TemplateTable,
    diagnostics: &'a mut Vec<Diagnostic>,
}

const PIPELINE: Schema = Schema {
    what: "the pipeline",
    attrs: &["version"],
    blocks: &["env"],
    items: &[
        "secret",
        "artifact",
        "environment",
        "job",
        "stage",
        "gate",
        "promote",
        "drill",
    ],
    statements: &[],
    free_attrs: false,
};

/// What the block opened by `keyword` accepts, read from the same schemas elaboration checks
/// against (`None` for a word that opens no block).
pub(super) fn block_keys(keyword: &str) -> Option<super::BlockKeys> {
    let schema = match keyword {
        "pipeline" => PIPELINE,
        "secret" => items::SECRET,
        "artifact" => items::ARTIFACT,
        "environment" => items::ENVIRONMENT,
        "stage" => items::STAGE,
        "gate" => items::GATE,
        "drill" => items::DRILL,
        "job" => job::JOB,
        "env" => job::ENV,
        "matrix" => job::MATRIX,
        "outputs" => job::OUTPUTS,
        "promote" => promote::PROMOTE,
        "approval" => promote::APPROVAL,
        "rollout" => promote::ROLLOUT,
        "watch" => promote::WATCH,
        "migrate" => promote::MIGRATE,
        "deploy" | "smoke" | "rollback" | "backup" | "restore" | "verify" => {
            job::step_schema(keyword)
        }
        _ => return None,
    };
    Some(super::BlockKeys {
        attrs: schema.attrs,
        blocks: schema.blocks,
        items: schema.items,
        statements: schema.statements.iter().map(|kind| kind.word()).collect(),
        free_attrs: schema.free_attrs,
    })
}

/// The rollout strategies `rollout NAME { … }` accepts.
pub(super) fn rollout_strategies() -> &'static [&'static str] {
    promote::STRATEGIES
}

/// Names already declared in one namespace, with where and as what.
#[derive(Default)]
struct Namespace {
    declared: HashMap<String, (Span, &'static str)>,
}

impl Namespace {
    /// Declares `name` as a `kind`; reports E0102 and returns false when it is taken.
    fn declare(
        &mut self,
        name: &Ident,
        kind: &'static str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> bool {
        match self.declared.get(&name.name) {
            Some((first, first_kind)) => {
                let message = if kind == "promote" {
                    format!(
                        "environment `{}` is promoted twice (at most one promote per environment)",
                        name.name
                    )
                } else if *first_kind == kind {
                    format!("{kind} `{}` is defined twice", name.name)
                } else {
                    format!(
                        "`{}` is already the name of a {first_kind} (jobs, stages and gates share one namespace)",
                        name.name
                    )
                };
                diagnostics.push(
                    Diagnostic::error("E0102", message)
                        .primary(name.span, "defined again here")
                        .secondary(*first, "first defined here")
                        .help("rename one of them"),
                );
                false
            }
            None => {
                self.declared.insert(name.name.clone(), (name.span, kind));
                true
            }
        }
    }
}

/// The namespaces of SPEC §5: one for jobs, stages and gates; one each for the rest.
#[derive(Default)]
struct Namespaces {
    steps: Namespace,
    environments: Namespace,
    artifacts: Namespace,
    secrets: Namespace,
    drills: Namespace,
    promotes: Namespace,
}

/// Elaborates `pipeline` with the templates visible in its file.
pub(super) fn elaborate(
    pipeline: &Pipeline,
    templates: &TemplateTable,
    sources: &SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Program {
    let mut elaborator = Elaborator {
        sources,
        templates,
        diagnostics,
    };
    elaborator.pipeline(pipeline)
}

/// Checks a template body on its own, with each parameter bound to a stand-in of its declared
/// type, so a broken template is reported once at its definition even when it is never used.
pub(super) fn check_template_body(
    statements: &[Stmt],
    sources: &SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let templates = TemplateTable::default();
    let mut elaborator = Elaborator {
        sources,
        templates: &templates,
        diagnostics,
    };
    elaborator.template_body(statements);
}

impl Elaborator<'_> {
    fn pipeline(&mut self, pipeline: &Pipeline) -> Program {
        let body = self.read_body(&pipeline.body, &PIPELINE);
        let mut program = Program {
            name: pipeline.name.clone(),
            version: body
                .attr("version")
                .and_then(|attr| self.string(&attr.value)),
            env: body
                .block("env")
                .map(|block| self.env_block(block))
                .unwrap_or_default(),
            secrets: Vec::new(),
            artifacts: Vec::new(),
            environments: Vec::new(),
            stages: Vec::new(),
            jobs: Vec::new(),
            gates: Vec::new(),
            promotes: Vec::new(),
            drills: Vec::new(),
        };
        let mut names = Namespaces::default();
        let mut environments = Vec::new();
        for block in body
            .blocks
            .iter()
            .filter(|block| block.keyword.name != "env")
        {
            self.item(block, &mut program, &mut names, &mut environments);
        }
        program.environments = self.resolve_environments(environments);
        program
    }

    /// One named item of the pipeline body, added to `program` unless its name is taken.
    fn item(
        &mut self,
        block: &Block,
        program: &mut Program,
        names: &mut Namespaces,
        environments: &mut Vec<items::RawEnvironment>,
    ) {
        let keyword = block.keyword.name.as_str();
        let Some(name) = self.item_name(block) else {
            return;
        };
        match keyword {
            "secret" => {
                let secret = self.secret(block, name);
                if names
                    .secrets
                    .declare(&secret.name, "secret", self.diagnostics)
                {
                    program.secrets.push(secret);
                }
            }
            "artifact" => {
                let artifact = self.artifact(block, name);
                if names
                    .artifacts
                    .declare(&artifact.name, "artifact", self.diagnostics)
                {
                    program.artifacts.push(artifact);
                }
            }
            "environment" => {
                let environment = self.environment(block, name);
                if names
                    .environments
                    .declare(&environment.name, "environment", self.diagnostics)
                {
                    environments.push(environment);
                }
            }
            "job" => {
                let job = self.job(block, name, None, &[]);
                if names.steps.declare(&job.name, "job", self.diagnostics) {
                    program.jobs.push(job);
                }
            }
            "stage" => self.stage(block, name, program, names),
            "gate" => {
                let gate = self.gate(block, name);
                if names.steps.declare(&gate.name, "gate", self.diagnostics) {
                    program.gates.push(gate);
                }
            }
            "promote" => {
                let promote = self.promote(block, name);
                if names
                    .promotes
                    .declare(&promote.environment, "promote", self.diagnostics)
                {
                    program.promotes.push(promote);
                }
            }
            _ => {
                let drill = self.drill(block, name);
                if names.drills.declare(&drill.name, "drill", self.diagnostics) {
                    program.drills.push(drill);
                }
            }
        }
    }

    /// A stage and the jobs declared in it, which join `program.jobs` in source order.
    fn stage(&mut self, block: &Block, name: Ident, program: &mut Program, names: &mut Namespaces) {
        let (mut stage, job_blocks) = self.stage_header(block, name);
        let declared = names.steps.declare(&stage.name, "stage", self.diagnostics);
        for job_block in job_blocks {
            let Some(job_name) = self.item_name(job_block) else {
                continue;
            };
            let job = self.job(job_block, job_name, Some(&stage.name), &stage.after);
            if names.steps.declare(&job.name, "job", self.diagnostics) {
                stage.jobs.push(job.name.clone());
                program.jobs.push(job);
            }
        }
        if declared {
            program.stages.push(stage);
        }
    }

    /// The name after an item's keyword (`job NAME`); E0104 when it is missing.
    fn item_name(&mut self, block: &Block) -> Option<Ident> {
        self.check_head(block, true, false);
        if block.name.is_none() {
            let keyword = &block.keyword.name;
            self.diagnostics.push(
                Diagnostic::error("E0104", format!("this {keyword} has no name"))
                    .primary(block.keyword.span, "a name must follow")
                    .help(format!("write `{keyword} NAME {{ … }}`")),
            );
        }
        block.name.clone()
    }

    /// Reports what the block's head has that this kind of block does not take: a name
    /// (`deploy x {`), an argument (`deploy 5m {`), or a template call (only jobs have one).
    fn check_head(&mut self, block: &Block, takes_name: bool, takes_argument: bool) {
        let keyword = &block.keyword.name;
        if block.template.is_some() && keyword != "job" {
            self.diagnostics.push(
                Diagnostic::error(
                    "E0103",
                    format!("a {keyword} cannot be made from a template"),
                )
                .primary(block.keyword.span, "only a job can be `= template(…)`")
                .help("templates define job bodies: write `job NAME = template(…)`"),
            );
        }
        let unexpected = [
            block
                .name
                .as_ref()
                .map(|name| name.span)
                .filter(|_| !takes_name),
            block
                .arg
                .as_ref()
                .map(|arg| arg.span)
                .filter(|_| !takes_argument),
        ];
        for span in unexpected.into_iter().flatten() {
            self.diagnostics.push(
                Diagnostic::error(
                    "E0103",
                    format!("`{keyword}` takes no name or argument here"),
                )
                .primary(span, "not accepted here")
                .help(format!("write `{keyword} {{ … }}`")),
            );
        }
    }

    /// The statements of a block's body (empty when it was written without one).
    fn statements<'b>(&self, block: &'b Block) -> &'b [Stmt] {
        block.body.as_deref().unwrap_or(&[])
    }

    /// A block that takes neither a name nor an argument (`deploy { … }`, `env { … }`).
    fn anonymous_statements<'b>(&mut self, block: &'b Block) -> &'b [Stmt] {
        self.check_head(block, false, false);
        self.statements(block)
    }
}

#[cfg(test)]
mod tests;
