//! The names expressions read (SPEC §6): what each dotted path means, its type, and where it is
//! available. A path that exists nowhere is E0101; one that exists elsewhere is E0203.

use super::index::{Index, unknown_name_help};
use super::walk::{DrillPart, Place, PromotePart};
use crate::diagnostics::{Diagnostic, Span};
use crate::syntax::ast::{Ident, Type};

/// What a path resolves to at a place.
pub(super) enum Lookup {
    Found(Type),
    /// E0101: the name exists nowhere.
    Unknown(Box<Diagnostic>),
    /// E0203: the name exists, but not at this place.
    NotHere(Box<Diagnostic>),
    /// A secret's value (`secrets.x` or the bare name): E0502, worded by the caller.
    Secret {
        name: String,
        span: Span,
    },
    /// Nothing to say: the problem is reported elsewhere (an unknown environment).
    Skip,
}

/// The roots of dotted names, for "did you mean".
const ROOTS: &[&str] = &[
    "git", "date", "run", "pipeline", "jobs", "matrix", "env", "artifact", "previous", "rollout",
    "backup",
];

const STRING: Type = Type::String;

pub(super) fn lookup(index: &Index, place: Place, path: &[Ident], span: Span) -> Lookup {
    let [root, rest @ ..] = path else {
        return Lookup::Skip;
    };
    let string_fields = |fields: &[&str]| -> Vec<(String, Type)> {
        fields.iter().map(|f| (f.to_string(), STRING)).collect()
    };
    match root.name.as_str() {
        "git" => found(fields(
            root,
            rest,
            &string_fields(&["sha", "short_sha", "branch", "tag"]),
        )),
        "date" => found(fields(root, rest, &[])),
        "run" => found(fields(root, rest, &string_fields(&["id"]))),
        "pipeline" => found(fields(root, rest, &string_fields(&["name", "version"]))),
        "jobs" => found(job_path(index, root, rest)),
        "matrix" => matrix_path(index, place, root, rest),
        "env" => env_path(index, place, root, rest),
        "artifact" => {
            let result = fields(root, rest, &string_fields(&["path", "digest", "version"]));
            let here = matches!(place, Place::Promote(..));
            available(
                result,
                here,
                path,
                span,
                place,
                "inside a promote (any of its blocks)",
            )
        }
        "previous" => {
            let result = fields(root, rest, &string_fields(&["path", "digest", "version"]));
            let here = matches!(place, Place::Promote(_, PromotePart::Rollback));
            available(
                result,
                here,
                path,
                span,
                place,
                "only inside a promote's `rollback` block",
            )
        }
        "backup" => {
            let result = fields(root, rest, &string_fields(&["path", "digest"]));
            let here = matches!(
                place,
                Place::Drill(_, DrillPart::Restore | DrillPart::Verify)
            );
            available(
                result,
                here,
                path,
                span,
                place,
                "only inside a drill's `restore` and `verify` blocks",
            )
        }
        "rollout" => {
            let table = [
                ("weight".to_string(), Type::Number),
                ("step".to_string(), Type::Number),
            ];
            let result = fields(root, rest, &table);
            let here = matches!(place, Place::Promote(_, PromotePart::Deploy));
            available(
                result,
                here,
                path,
                span,
                place,
                "only inside a promote's `deploy` block",
            )
        }
        "secrets" => Lookup::Secret {
            name: rest
                .first()
                .map_or_else(|| "secrets".to_string(), |n| n.name.clone()),
            span,
        },
        _ => bare_name(index, place, path, span),
    }
}

fn found(result: Result<Type, Box<Diagnostic>>) -> Lookup {
    match result {
        Ok(ty) => Lookup::Found(ty),
        Err(diagnostic) => Lookup::Unknown(diagnostic),
    }
}

fn dotted(path: &[Ident]) -> String {
    path.iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// What a place is, in words: "a job", "the `smoke` block of promote `staging`".
fn describe(place: Place) -> String {
    match place {
        Place::Pipeline => "the pipeline's `version` and `env`".to_string(),
        Place::Stage(stage) => format!("stage `{}`", stage.name.name),
        Place::Job(job) => format!("job `{}`", job.name.name),
        Place::Gate(gate) => format!("gate `{}`", gate.name.name),
        Place::Drill(drill, _) => format!("drill `{}`", drill.name.name),
        Place::Promote(promote, part) => {
            let part = match part {
                PromotePart::Header => "the `when`",
                PromotePart::Migrate => "the `migrate` block",
                PromotePart::Deploy => "the `deploy` block",
                PromotePart::Smoke => "the `smoke` block",
                PromotePart::Rollback => "the `rollback` block",
                PromotePart::Probe(_) => "a probe command",
                PromotePart::Condition(_) => "a watch condition",
            };
            format!("{part} of promote `{}`", promote.environment.name)
        }
    }
}

fn not_available(path: &[Ident], span: Span, place: Place, where_available: &str) -> Lookup {
    let name = dotted(path);
    Lookup::NotHere(Box::new(
        Diagnostic::error("E0203", format!("`{name}` is not available here"))
            .primary(span, format!("not available in {}", describe(place)))
            .help(format!("`{name}` is available {where_available}")),
    ))
}

fn available(
    result: Result<Type, Box<Diagnostic>>,
    here: bool,
    path: &[Ident],
    span: Span,
    place: Place,
    where_available: &str,
) -> Lookup {
    match result {
        Ok(ty) if here => Lookup::Found(ty),
        Ok(_) => not_available(path, span, place, where_available),
        Err(diagnostic) => Lookup::Unknown(diagnostic),
    }
}

/// `root.field` against a table of fields; an empty table means `root` is a value itself.
fn fields(root: &Ident, rest: &[Ident], table: &[(String, Type)]) -> Result<Type, Box<Diagnostic>> {
    let names: Vec<&str> = table.iter().map(|(name, _)| name.as_str()).collect();
    let listing = names
        .iter()
        .map(|n| format!("`{}.{n}`", root.name))
        .collect::<Vec<_>>();
    let Some(field) = rest.first() else {
        if table.is_empty() {
            return Ok(STRING);
        }
        return Err(Box::new(
            Diagnostic::error("E0101", format!("`{}` needs a field", root.name))
                .primary(root.span, "not a value by itself")
                .help(format!("use one of {}", listing.join(", "))),
        ));
    };
    let Some((_, ty)) = table.iter().find(|(name, _)| *name == field.name) else {
        let message = if table.is_empty() {
            format!("`{}` has no fields", root.name)
        } else {
            format!("unknown field `{}` of `{}`", field.name, root.name)
        };
        return Err(Box::new(
            Diagnostic::error("E0101", message)
                .primary(field.span, format!("not a field of `{}`", root.name))
                .help(unknown_name_help(
                    &field.name,
                    &format!("fields of `{}`", root.name),
                    &names,
                )),
        ));
    };
    no_more_fields(&format!("{}.{}", root.name, field.name), &rest[1..])?;
    Ok(ty.clone())
}

/// `ROOT.KEY` with nothing after it: the key, or the diagnostic for a missing key or extra
/// fields (`matrix`, `env`).
fn only_key<'r>(
    root: &Ident,
    rest: &'r [Ident],
    needs: &str,
    help: &str,
) -> Result<&'r Ident, Box<Diagnostic>> {
    let Some(key) = rest.first() else {
        return Err(Box::new(
            Diagnostic::error("E0101", format!("`{}` needs {needs}", root.name))
                .primary(root.span, "not a value by itself")
                .help(help),
        ));
    };
    no_more_fields(&format!("{}.{}", root.name, key.name), &rest[1..])?;
    Ok(key)
}

fn no_more_fields(value: &str, extra: &[Ident]) -> Result<(), Box<Diagnostic>> {
    let (Some(first), Some(last)) = (extra.first(), extra.last()) else {
        return Ok(());
    };
    Err(Box::new(
        Diagnostic::error("E0101", format!("`{value}` has no fields"))
            .primary(first.span.to(last.span), "not a field")
            .help(format!(
                "`{value}` is a value by itself: remove `.{}`",
                dotted(extra)
            )),
    ))
}

/// `jobs.J.succeeded|duration|exit_code|outputs.K`.
fn job_path(index: &Index, root: &Ident, rest: &[Ident]) -> Result<Type, Box<Diagnostic>> {
    let Some(job_name) = rest.first() else {
        return Err(Box::new(
            Diagnostic::error("E0101", "`jobs` needs a job and a field")
                .primary(root.span, "not a value by itself")
                .help("name a job and a field, e.g. `jobs.test.succeeded`"),
        ));
    };
    let Some(job) = index.jobs.get(job_name.name.as_str()) else {
        let mut jobs: Vec<&str> = index.jobs.keys().copied().collect();
        jobs.sort_unstable();
        return Err(Box::new(
            Diagnostic::error("E0101", format!("unknown job `{}`", job_name.name))
                .primary(
                    job_name.span,
                    format!("no job is named `{}`", job_name.name),
                )
                .help(unknown_name_help(&job_name.name, "jobs", &jobs)),
        ));
    };
    let table = [
        ("succeeded".to_string(), Type::Bool),
        ("duration".to_string(), Type::Duration),
        ("exit_code".to_string(), Type::Number),
        ("outputs".to_string(), STRING),
    ];
    let prefix = Ident {
        name: format!("jobs.{}", job_name.name),
        span: job_name.span,
    };
    if rest.get(1).is_some_and(|field| field.name == "outputs") {
        return job_output(job, &prefix, &rest[2..]);
    }
    fields(&prefix, &rest[1..], &table)
}

fn job_output(
    job: &crate::check::program::Job,
    prefix: &Ident,
    rest: &[Ident],
) -> Result<Type, Box<Diagnostic>> {
    let job_name = &job.name.name;
    let Some(key) = rest.first() else {
        return Err(Box::new(
            Diagnostic::error(
                "E0101",
                format!("`{}.outputs` needs an output name", prefix.name),
            )
            .primary(prefix.span, "name one of its declared outputs")
            .help(format!("e.g. `{}.outputs.coverage`", prefix.name)),
        ));
    };
    let declared: Vec<&str> = job
        .outputs
        .iter()
        .map(|(name, _)| name.name.as_str())
        .collect();
    let Some((_, ty)) = job.outputs.iter().find(|(name, _)| name.name == key.name) else {
        let help = match crate::diagnostics::did_you_mean(&key.name, declared.iter().copied()) {
            Some(suggestion) => suggestion,
            None => format!(
                "declare it in job `{job_name}`: `outputs {{ {}: type }}`, and have the job \
                 write `{}=value` to `$PIPE_OUTPUT`",
                key.name, key.name
            ),
        };
        return Err(Box::new(
            Diagnostic::error(
                "E0101",
                format!("job `{job_name}` declares no output `{}`", key.name),
            )
            .primary(key.span, "not a declared output")
            .secondary(job.name.span, format!("job `{job_name}` is declared here"))
            .help(help),
        ));
    };
    no_more_fields(&format!("{}.outputs.{}", prefix.name, key.name), &rest[1..])?;
    Ok(ty.value.clone())
}

/// `matrix.K`: a string, inside a job whose matrix has the key K.
fn matrix_path(index: &Index, place: Place, root: &Ident, rest: &[Ident]) -> Lookup {
    let key = match only_key(
        root,
        rest,
        "a key",
        "name a key of the job's `matrix`, e.g. `matrix.os`",
    ) {
        Ok(key) => key,
        Err(diagnostic) => return Lookup::Unknown(diagnostic),
    };
    let keys_of = |job: &crate::check::program::Job| -> Vec<String> {
        job.matrix
            .iter()
            .map(|(name, _)| name.name.clone())
            .collect()
    };
    let here: Vec<String> = match place {
        Place::Job(job) => keys_of(job),
        _ => Vec::new(),
    };
    if here.contains(&key.name) {
        return Lookup::Found(STRING);
    }
    let all: Vec<String> = index.program.jobs.iter().flat_map(keys_of).collect();
    let path = [root.clone(), key.clone()];
    let span = root.span.to(key.span);
    if let Some(owner) = index
        .program
        .jobs
        .iter()
        .find(|job| keys_of(job).contains(&key.name))
    {
        let where_available = format!(
            "only inside a job whose `matrix` has the key `{}` (job `{}`)",
            key.name, owner.name.name
        );
        return not_available(&path, span, place, &where_available);
    }
    let candidates = if here.is_empty() { all } else { here };
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    Lookup::Unknown(Box::new(
        Diagnostic::error("E0101", format!("unknown matrix key `{}`", key.name))
            .primary(key.span, "no job's `matrix` has this key")
            .help(unknown_name_help(&key.name, "matrix keys", &candidates)),
    ))
}

/// The environment whose attributes `env.*` reads at a place: `None` outside promotes and drills,
/// `Some(None)` when that environment is itself unknown.
fn environment_in_scope<'p>(
    index: &Index<'p>,
    place: Place<'p>,
) -> Option<Option<&'p crate::check::program::Environment>> {
    match place {
        Place::Promote(promote, _) => Some(index.environment_of(promote)),
        Place::Drill(drill, _) => Some(
            drill
                .environment
                .as_ref()
                .and_then(|name| index.environments.get(name.name.as_str()).copied()),
        ),
        Place::Pipeline | Place::Stage(_) | Place::Job(_) | Place::Gate(_) => None,
    }
}

/// `env.KEY`: an attribute of the promote's or drill's environment, or `env.name`.
fn env_path(index: &Index, place: Place, root: &Ident, rest: &[Ident]) -> Lookup {
    let key = match only_key(
        root,
        rest,
        "an attribute",
        "name an attribute of the environment, e.g. `env.url` or `env.name`",
    ) {
        Ok(key) => key,
        Err(diagnostic) => return Lookup::Unknown(diagnostic),
    };
    match environment_in_scope(index, place) {
        Some(Some(environment)) => environment_attribute(environment, key),
        Some(None) => Lookup::Skip,
        None => env_outside_scope(place, root, key),
    }
}

fn environment_attribute(environment: &crate::check::program::Environment, key: &Ident) -> Lookup {
    if key.name == "name" {
        return Lookup::Found(STRING);
    }
    if let Some((_, value)) = environment
        .attrs
        .iter()
        .find(|(name, _)| name.name == key.name)
    {
        return Lookup::Found(value.value.ty());
    }
    let mut keys: Vec<&str> = environment
        .attrs
        .iter()
        .map(|(name, _)| name.name.as_str())
        .collect();
    keys.push("name");
    let environment_name = &environment.name.name;
    Lookup::Unknown(Box::new(
        Diagnostic::error(
            "E0101",
            format!(
                "environment `{environment_name}` has no attribute `{}`",
                key.name
            ),
        )
        .primary(key.span, "not an attribute of this environment")
        .secondary(
            environment.name.span,
            format!("environment `{environment_name}`"),
        )
        .help(unknown_name_help(
            &key.name,
            &format!("attributes of `{environment_name}`"),
            &keys,
        )),
    ))
}

/// `env.KEY` in a job, gate, stage or the pipeline: no environment is in scope there, whatever
/// the key (a typo cannot be judged without one).
fn env_outside_scope(place: Place, root: &Ident, key: &Ident) -> Lookup {
    let path = [root.clone(), key.clone()];
    let where_available = format!(
        "inside a promote or a drill, where it is an attribute of their environment; a variable \
         of an `env {{ … }}` block is read by the shell as `${}`",
        key.name
    );
    not_available(&path, root.span.to(key.span), place, &where_available)
}

/// A one-word name: a probe of this watch, a secret (E0502), or nothing expressions can read.
fn bare_name(index: &Index, place: Place, path: &[Ident], span: Span) -> Lookup {
    let Some(name) = path.first() else {
        return Lookup::Skip;
    };
    let probes_here: Vec<&crate::check::program::Probe> = match place {
        Place::Promote(_, PromotePart::Condition(watch)) => watch.probes.iter().collect(),
        _ => Vec::new(),
    };
    if path.len() == 1 {
        if let Some(probe) = probes_here.iter().find(|p| p.name.name == name.name) {
            return Lookup::Found(probe.ty.value.clone());
        }
        if index.secrets.contains_key(name.name.as_str()) {
            return Lookup::Secret {
                name: name.name.clone(),
                span,
            };
        }
        let is_probe_elsewhere = index
            .program
            .promotes
            .iter()
            .flat_map(|p| p.watch.iter().flat_map(|w| w.probes.iter()))
            .any(|p| p.name.name == name.name);
        if is_probe_elsewhere {
            let where_available = "only in `rollback when` and `warn when` of its `watch`";
            return not_available(path, span, place, where_available);
        }
    }
    let mut candidates: Vec<&str> = ROOTS.to_vec();
    candidates.extend(probes_here.iter().map(|p| p.name.name.as_str()));
    let help = crate::diagnostics::did_you_mean(&name.name, candidates.iter().copied())
        .unwrap_or_else(|| {
            "expressions read `git.*`, `date`, `run.id`, `pipeline.*`, `jobs.J.*`, `matrix.K`, \
             `env.KEY`, `artifact.*`, `previous.*`, `rollout.*`, `backup.*` and, in a watch, \
             its probes"
                .to_string()
        });
    Lookup::Unknown(Box::new(
        Diagnostic::error("E0101", format!("unknown name `{}`", name.name))
            .primary(name.span, "not a name expressions can read")
            .help(help),
    ))
}
