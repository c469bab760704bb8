//! Secret values: read once at run start from the host environment or a file, handed only to
//! the processes of items that declare them, and fed to the redactor.

use crate::check::program::SecretSource;
use crate::compile::plan::Plan;
use std::collections::BTreeMap;
use std::path::Path;

/// A secret a step needs whose value could not be read (the reason is the source's own, e.g.
/// "environment variable X is not set").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("secret `{name}` is not available: {why}")]
pub struct SecretUnavailable {
    pub name: String,
    pub why: String,
}

/// The secret values of a run, and why the missing ones are missing.
#[derive(Default)]
pub struct SecretValues {
    values: BTreeMap<String, String>,
    missing: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.values.keys().collect();
        write!(
            f,
            "SecretValues {{ available: {names:?}, missing: {:?} }}",
            self.missing
        )
    }
}

impl SecretValues {
    /// Reads every secret of the plan. A file secret loses one trailing newline (editors add
    /// one; the value is what comes before it).
    pub fn load(plan: &Plan, pipeline_dir: &Path, host_env: &BTreeMap<String, String>) -> Self {
        let mut secrets = SecretValues::default();
        for (name, secret) in &plan.secrets {
            let value = match &secret.from {
                SecretSource::Env(variable) => host_env
                    .get(variable)
                    .cloned()
                    .ok_or_else(|| format!("environment variable `{variable}` is not set")),
                SecretSource::File(path) => std::fs::read_to_string(pipeline_dir.join(path))
                    .map(|text| {
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        text.strip_suffix('\r').unwrap_or(text).to_string()
                    })
                    .map_err(|e| format!("file `{path}` cannot be read: {e}")),
            };
            match value {
                Ok(value) => {
                    secrets.values.insert(name.clone(), value);
                }
                Err(why) => {
                    secrets.missing.insert(name.clone(), why);
                }
            }
        }
        secrets
    }

    /// Every available value, for the redactor.
    pub fn all_values(&self) -> Vec<String> {
        self.values.values().cloned().collect()
    }

    /// The values of `names`, or the first one that is unavailable and why.
    pub fn select(&self, names: &[String]) -> Result<BTreeMap<String, String>, SecretUnavailable> {
        let mut selected = BTreeMap::new();
        for name in names {
            match self.values.get(name) {
                Some(value) => {
                    selected.insert(name.clone(), value.clone());
                }
                None => {
                    let why = self
                        .missing
                        .get(name)
                        .map_or("it is not declared", String::as_str);
                    return Err(SecretUnavailable {
                        name: name.clone(),
                        why: why.to_string(),
                    });
                }
            }
        }
        Ok(selected)
    }
}
