//! The standard library: the `std/*.pipe` template modules bundled into the binary, so
//! `import "std/rust"` works offline and never reaches the file-system loader.

/// Every bundled module as (name without the `std/` prefix, source text), sorted by name.
const MODULES: &[(&str, &str)] = &[
    ("docker", include_str!("../../stdlib/std/docker.pipe")),
    ("git", include_str!("../../stdlib/std/git.pipe")),
    ("http", include_str!("../../stdlib/std/http.pipe")),
    ("k8s", include_str!("../../stdlib/std/k8s.pipe")),
    ("postgres", include_str!("../../stdlib/std/postgres.pipe")),
    ("rust", include_str!("../../stdlib/std/rust.pipe")),
    ("sqlite", include_str!("../../stdlib/std/sqlite.pipe")),
];

/// The import prefix that selects a bundled module.
pub const STD_PREFIX: &str = "std/";

/// The source of the bundled module `name` (`rust` for `import "std/rust"`).
pub fn module(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(module_name, _)| *module_name == name)
        .map(|(_, text)| *text)
}

/// Every bundled module as (name, source text), sorted by name.
pub fn modules() -> &'static [(&'static str, &'static str)] {
    MODULES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_spec_names_is_bundled() {
        for name in ["rust", "http", "git", "k8s", "docker", "sqlite", "postgres"] {
            assert!(module(name).is_some(), "std/{name} is missing");
        }
        assert!(module("python").is_none());
        let names: Vec<&str> = modules().iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
