//! Rename of a job, stage, gate, environment (with its promote), artifact, secret, drill,
//! probe, output or a template of this file, across the file: refused with a message when the
//! new name is not an identifier, is a word of the language, or is already taken.

use super::analysis::Analysis;
use super::locations::Locator;
use super::symbols::{Key, Namespace};
use serde_json::{Value, json};

/// Words an item name must not take: they read as the language's own words in expressions.
const RESERVED: &[&str] = &[
    "true", "false", "and", "or", "not", "git", "date", "jobs", "matrix", "previous", "rollout",
    "artifact", "env", "pipeline", "run", "secrets",
];

/// The name under the cursor and its range, if it can be renamed (`prepareRename`).
pub fn prepare(analysis: &Analysis, locator: &Locator, offset: usize) -> Result<Value, String> {
    let occurrence = analysis
        .symbols
        .at(offset)
        .ok_or("there is no name here to rename")?;
    renamable(analysis, &occurrence.key)?;
    let placeholder = analysis.sources.snippet(occurrence.span);
    Ok(json!({"range": locator.range(occurrence.span), "placeholder": placeholder}))
}

/// The edits that rename the name under the cursor to `new_name` everywhere in the file.
pub fn rename(
    analysis: &Analysis,
    locator: &Locator,
    offset: usize,
    new_name: &str,
) -> Result<Value, String> {
    let occurrence = analysis
        .symbols
        .at(offset)
        .ok_or("there is no name here to rename")?;
    let key = occurrence.key.clone();
    renamable(analysis, &key)?;
    valid_name(new_name)?;
    let renamed = renamed_key(&key, new_name);
    if analysis.symbols.all(&renamed).next().is_some() || taken(analysis, &key, new_name) {
        return Err(format!(
            "cannot rename `{}` to `{new_name}`: that name is already taken",
            short(&key)
        ));
    }
    let edits: Vec<Value> = analysis
        .symbols
        .all(&key)
        .filter(|o| !o.span.is_empty())
        .map(|o| json!({"range": locator.range(o.span), "newText": new_name}))
        .collect();
    Ok(json!({"changes": {locator.entry_uri: edits}}))
}

fn renamable(analysis: &Analysis, key: &Key) -> Result<(), String> {
    if key.namespace == Namespace::Module || key.namespace == Namespace::Param {
        return Err("imports and template parameters are renamed where they are declared".into());
    }
    if analysis.symbols.all(key).any(|o| o.span.file != 0) {
        return Err(format!(
            "`{}` is declared in an imported file; rename it there",
            key.name
        ));
    }
    if analysis.symbols.definitions(key).next().is_none() {
        return Err(format!("`{}` is not declared in this file", key.name));
    }
    Ok(())
}

fn valid_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "`{name}` is not a valid name: use a letter or `_`, then letters, digits, `_` or `-`"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is a word of the language; choose another name"
        ));
    }
    Ok(())
}

/// The key the renamed name would have (an output or probe keeps its owner's prefix).
fn renamed_key(key: &Key, new_name: &str) -> Key {
    let name = match key.name.rsplit_once('.') {
        Some((owner, _)) => format!("{owner}.{new_name}"),
        None => new_name.to_string(),
    };
    Key {
        namespace: key.namespace,
        name,
    }
}

/// Jobs, stages, gates and promotes are all nodes of one graph: a step may not take a
/// promote's name, nor an environment a step's.
fn taken(analysis: &Analysis, key: &Key, new_name: &str) -> bool {
    let other = match key.namespace {
        Namespace::Step => Namespace::Environment,
        Namespace::Environment => Namespace::Step,
        _ => return false,
    };
    let probe = Key {
        namespace: other,
        name: new_name.to_string(),
    };
    analysis.symbols.all(&probe).next().is_some()
}

fn short(key: &Key) -> &str {
    key.name.rsplit('.').next().unwrap_or(&key.name)
}
