//! Jobs (written out or made from a template) and the step blocks that share their step
//! attributes (`deploy`, `smoke`, `rollback`, `migrate`, `backup`, `restore`, `verify`).

use super::Elaborator;
use super::body::{Body, Schema, StmtKind};
use crate::check::program::{Job, Spanned, StepBlock, StepSettings, TemplateUse};
use crate::check::templates;
use crate::diagnostics::{Label, Span};
use crate::syntax::ast::{Block, Call, ExprKind, Ident, Stmt, StrLit, Type};
use std::borrow::Cow;

pub(super) const JOB: Schema = Schema {
    what: "a job",
    attrs: &[
        "needs",
        "after",
        "timeout",
        "retries",
        "backoff",
        "secrets",
        "produces",
        "when",
        "shell",
        "workdir",
        "outside_workspace",
        "inherit_env",
    ],
    blocks: &["env", "outputs", "matrix"],
    items: &[],
    statements: &[StmtKind::Run],
    free_attrs: false,
};

/// The schema of `deploy`, `smoke`, `rollback`, `backup`, `restore` and `verify` blocks.
pub(super) fn step_schema(keyword: &str) -> Schema {
    Schema {
        what: step_block_word(keyword),
        attrs: &["timeout", "retries", "backoff"],
        blocks: &["env"],
        items: &[],
        statements: &[StmtKind::Run],
        free_attrs: false,
    }
}

/// How a step block is named in messages.
pub(super) fn step_block_word(keyword: &str) -> &'static str {
    match keyword {
        "deploy" => "a `deploy` block",
        "smoke" => "a `smoke` block",
        "rollback" => "a `rollback` block",
        "migrate" => "a `migrate` block",
        "backup" => "a `backup` block",
        "restore" => "a `restore` block",
        "verify" => "a `verify` block",
        _ => "a step block",
    }
}

pub(super) const ENV: Schema = Schema {
    what: "an `env` block",
    attrs: &[],
    blocks: &[],
    items: &[],
    statements: &[],
    free_attrs: true,
};

pub(super) const MATRIX: Schema = Schema {
    what: "a `matrix` block",
    ..ENV
};

pub(super) const OUTPUTS: Schema = Schema {
    what: "an `outputs` block",
    attrs: &[],
    blocks: &[],
    items: &[],
    statements: &[StmtKind::Field],
    free_attrs: false,
};

impl Elaborator<'_> {
    /// A job named `name`; in a stage, `stage` is set and the stage's `after` is added to its own.
    /// A call of an unknown template still makes a job (of its trailing block only), so what
    /// needs it is not reported again.
    pub(super) fn job(
        &mut self,
        block: &Block,
        name: Ident,
        stage: Option<&Ident>,
        stage_after: &[Ident],
    ) -> Job {
        let written = self.statements(block);
        let instance = block.template.as_ref().map(|call| {
            let instance = self
                .templates
                .instantiate(call, self.sources, self.diagnostics);
            (call, instance)
        });
        let (statements, template, needs_run) = match instance {
            Some((call, Some(instance))) => {
                let template_use = TemplateUse {
                    template: Ident {
                        name: call.name(),
                        span: call.callee_span(),
                    },
                    definition: instance.definition,
                    call: call.span,
                };
                let merged = templates::merge(instance.statements, written);
                (Cow::Owned(merged), Some(template_use), instance.complete)
            }
            Some((_, None)) => (Cow::Borrowed(written), None, false),
            None => (Cow::Borrowed(written), None, true),
        };
        let mut job = self.job_body(&statements, name, block.span, needs_run);
        job.stage = stage.cloned();
        job.after.extend(stage_after.iter().cloned());
        job.template = template;
        job
    }

    /// A template body checked on its own: a job body that may leave `run` to its callers.
    pub(super) fn template_body(&mut self, statements: &[Stmt]) {
        let placeholder = Ident {
            name: String::new(),
            span: statements.first().map(Stmt::span).unwrap_or_default(),
        };
        let span = placeholder.span;
        self.job_body(statements, placeholder, span, false);
    }

    /// Reads a job body; `needs_run`: report a body without `run` (E0104).
    fn job_body(&mut self, statements: &[Stmt], name: Ident, span: Span, needs_run: bool) -> Job {
        let body = self.read_body(statements, &JOB);
        if needs_run && body.runs.is_empty() {
            let what = format!("job `{}`", name.name);
            self.missing(&what, "run", name.span, "run \"./scripts/build.sh\"");
        }
        let names = |this: &mut Self, key: &str| {
            body.attr(key)
                .and_then(|attr| this.names(&attr.value))
                .unwrap_or_default()
        };
        Job {
            needs: names(self, "needs"),
            after: names(self, "after"),
            secrets: names(self, "secrets"),
            produces: names(self, "produces"),
            steps: body.runs.iter().map(|run| (*run).clone()).collect(),
            settings: self.step_settings(&body),
            outputs: body
                .block("outputs")
                .map(|b| self.outputs(b))
                .unwrap_or_default(),
            when: body.attr("when").map(|attr| attr.value.clone()),
            matrix: body
                .block("matrix")
                .map(|b| self.matrix(b))
                .unwrap_or_default(),
            shell: body
                .attr("shell")
                .and_then(|attr| self.plain_string(&attr.value)),
            workdir: body
                .attr("workdir")
                .and_then(|attr| self.plain_string(&attr.value)),
            outside_workspace: body
                .attr("outside_workspace")
                .and_then(|attr| self.bool_value(&attr.value)),
            inherit_env: body
                .attr("inherit_env")
                .and_then(|attr| self.strings(&attr.value))
                .unwrap_or_default(),
            name,
            stage: None,
            template: None,
            span,
        }
    }

    /// `timeout`, `retries`, `backoff` and `env {}` of a job or step block.
    fn step_settings(&mut self, body: &Body<'_>) -> StepSettings {
        StepSettings {
            timeout: body
                .attr("timeout")
                .and_then(|attr| self.duration(&attr.value)),
            retries: body
                .attr("retries")
                .and_then(|attr| self.whole_number(&attr.value)),
            backoff: body
                .attr("backoff")
                .and_then(|attr| self.duration(&attr.value)),
            env: body
                .block("env")
                .map(|b| self.env_block(b))
                .unwrap_or_default(),
        }
    }

    /// A step block with the usual step attributes.
    pub(super) fn step_block(&mut self, block: &Block) -> StepBlock {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &step_schema(&block.keyword.name));
        self.step_block_from(block, &body)
    }

    /// The step block `keyword` of a body, written out (`backup { … }`) or made from a
    /// template (`backup = sqlite_backup(…)`).
    pub(super) fn step_block_of(&mut self, body: &Body<'_>, keyword: &str) -> Option<StepBlock> {
        if let Some(block) = body.block(keyword) {
            return Some(self.step_block(block));
        }
        let attr = body.attr(keyword)?;
        let ExprKind::Call(call) = &attr.value.kind else {
            return None;
        };
        self.templated_step_block(keyword, call)
    }

    /// Whether the body has the step block `keyword`, in either form.
    pub(super) fn has_step_block(body: &Body<'_>, keyword: &str) -> bool {
        body.block(keyword).is_some() || body.attr(keyword).is_some()
    }

    /// A template's body read as a step block. What a step block cannot hold (`needs`,
    /// `produces`, …) is reported in the template, with the call that used it labelled too.
    fn templated_step_block(&mut self, keyword: &str, call: &Call) -> Option<StepBlock> {
        let instance = self
            .templates
            .instantiate(call, self.sources, self.diagnostics)?;
        let before = self.diagnostics.len();
        let body = self.read_body(&instance.statements, &step_schema(keyword));
        let settings = self.step_settings(&body);
        let used = format!(
            "`{}` used as {} here",
            call.name(),
            step_block_word(keyword)
        );
        for diagnostic in self.diagnostics.iter_mut().skip(before) {
            diagnostic.labels.push(Label {
                span: call.span,
                text: used.clone(),
                primary: false,
            });
        }
        if body.runs.is_empty() && instance.complete {
            let what = format!("template `{}`", call.name());
            self.missing(&what, "run", call.span, "run \"./scripts/step.sh\"");
        }
        Some(StepBlock {
            steps: body.runs.iter().map(|run| (*run).clone()).collect(),
            settings,
            span: call.span,
        })
    }

    /// A step block read with some schema that includes the step attributes.
    pub(super) fn step_block_from(&mut self, block: &Block, body: &Body<'_>) -> StepBlock {
        if body.runs.is_empty() {
            let keyword = &block.keyword.name;
            let what = format!("{keyword} block");
            self.missing(
                &what,
                "run",
                block.keyword.span,
                "run \"./scripts/step.sh\"",
            );
        }
        StepBlock {
            steps: body.runs.iter().map(|run| (*run).clone()).collect(),
            settings: self.step_settings(body),
            span: block.span,
        }
    }

    /// `env { K = "v" }`: string values, which may interpolate.
    pub(super) fn env_block(&mut self, block: &Block) -> Vec<(Ident, StrLit)> {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &ENV);
        body.attrs
            .iter()
            .filter_map(|attr| Some((attr.key.clone(), self.string(&attr.value)?)))
            .collect()
    }

    /// `outputs { coverage: percent }`
    fn outputs(&mut self, block: &Block) -> Vec<(Ident, Spanned<Type>)> {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &OUTPUTS);
        let mut outputs: Vec<(Ident, Spanned<Type>)> = Vec::new();
        for field in body.fields {
            if let Some((first, _)) = outputs
                .iter()
                .find(|(name, _)| name.name == field.name.name)
            {
                let first = first.span;
                self.duplicate(
                    format!("output `{}` is declared twice", field.name.name),
                    first,
                    field.name.span,
                );
                continue;
            }
            let ty = Spanned::new(field.ty.ty.clone(), field.ty.span);
            outputs.push((field.name.clone(), ty));
        }
        outputs
    }

    /// `matrix { os = ["linux", "macos"] }`, keys in declared order.
    fn matrix(&mut self, block: &Block) -> Vec<(Ident, Vec<Spanned<String>>)> {
        let statements = self.anonymous_statements(block);
        let body = self.read_body(statements, &MATRIX);
        body.attrs
            .iter()
            .filter_map(|attr| Some((attr.key.clone(), self.matrix_values(&attr.value)?)))
            .collect()
    }
}
