//! The bundled examples and stdlib are code: every example checks clean and its plan is a
//! snapshot; compiling twice gives the same bytes; every stdlib template type-checks.
#![allow(clippy::unwrap_used)]

use pipe::Type;
use pipe::{FileLoader, compile_file, compile_source};
use std::path::PathBuf;

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path().join("pipeline.pipe"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
}

#[test]
fn examples_check_clean_and_plans_are_stable() {
    let files = example_files();
    assert!(
        files.len() >= 3,
        "expected at least three examples, found {files:?}"
    );
    for file in files {
        let compilation = compile_file(&file);
        assert!(
            compilation.diagnostics.is_empty() && compilation.plan.is_some(),
            "{} is not clean:\n{}",
            file.display(),
            compilation.render(false)
        );
        let plan = compilation.plan.unwrap().to_json();
        let again = compile_file(&file).plan.unwrap().to_json();
        assert_eq!(plan, again, "{}: compiling twice differs", file.display());
        let name = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        insta::with_settings!({ snapshot_path => "snapshots/plans", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, plan);
        });
    }
}

/// An argument of the given type, written as source.
fn sample_argument(ty: &Type) -> String {
    match ty {
        Type::String => "\"sample\"".to_string(),
        Type::Number => "2".to_string(),
        Type::Bool => "true".to_string(),
        Type::Duration => "30s".to_string(),
        Type::Percent => "50%".to_string(),
        Type::List(inner) => format!("[{}]", sample_argument(inner)),
    }
}

#[test]
fn every_stdlib_template_type_checks_when_used() {
    let mut jobs = String::new();
    let mut imports = String::new();
    let mut count = 0;
    for (name, text) in pipe::stdlib::modules() {
        let alias = *name;
        imports.push_str(&format!("import \"std/{name}\" as {alias}\n"));
        let (module, diagnostics) = pipe::parse(0, text);
        assert!(
            diagnostics.is_empty(),
            "{name} does not parse: {diagnostics:?}"
        );
        assert!(!module.templates.is_empty(), "{name} has no templates");
        for template in &module.templates {
            assert!(
                !template.doc.trim().is_empty(),
                "{name}: template {} has no doc comment",
                template.name.name
            );
            let args: Vec<String> = template
                .params
                .iter()
                .filter(|p| p.default.is_none())
                .map(|p| format!("{}: {}", p.name.name, sample_argument(&p.ty.ty)))
                .collect();
            jobs.push_str(&format!(
                "  job t{count} = {alias}.{}({})\n",
                template.name.name,
                args.join(", ")
            ));
            count += 1;
        }
    }
    let source = format!("{imports}\npipeline stdlib_smoke {{\n{jobs}}}\n");
    let compilation = compile_source("stdlib_smoke.pipe", &source, &FileLoader);
    assert!(
        !compilation.has_errors(),
        "stdlib templates do not type-check:\n{source}\n{}",
        compilation.render(false)
    );
    assert!(
        count >= 7,
        "expected templates in every module, found {count}"
    );
}
