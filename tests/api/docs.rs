//! The documents that describe the code stay true to it: the code map in
//! ARCHITECTURE.md names every file under `src/` (and no file that is
//! gone), and every test the documents cite exists.

use std::collections::BTreeSet;
use std::path::Path;

fn repo(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn files_under(dir: &Path, out: &mut BTreeSet<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join(dir)).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        let rel = path.strip_prefix(root).expect("under the repository");
        if path.is_dir() {
            files_under(rel, out);
        } else {
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Backticked `src/…` paths in the rows of the code map table.
fn mapped(architecture: &str) -> BTreeSet<String> {
    let map = architecture
        .split("## Code map")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has a code map section");
    map.lines()
        .filter(|l| l.starts_with("| `src/"))
        .filter_map(|l| l.split('`').nth(1))
        .map(String::from)
        .collect()
}

#[test]
fn the_code_map_names_every_source_file_and_only_those() {
    let mut files = BTreeSet::new();
    files_under(Path::new("src"), &mut files);
    let listed = mapped(&repo("ARCHITECTURE.md"));
    let missing: Vec<_> = files.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "not in ARCHITECTURE.md's code map: {missing:?}"
    );
    assert!(gone.is_empty(), "in the code map but not in src/: {gone:?}");
}

/// `module::test_name` references to tests under `tests/api/`.
fn cited_tests(text: &str) -> BTreeSet<(String, String)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|quoted| {
            let (module, name) = quoted.split_once("::")?;
            let is_test_name =
                name.len() > 10 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let is_module = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/api/{module}.rs"))
                .exists();
            (is_test_name && is_module).then(|| (module.to_string(), name.to_string()))
        })
        .collect()
}

#[test]
fn every_test_the_documents_cite_exists() {
    for doc in ["ARCHITECTURE.md", "README.md"] {
        let cited = cited_tests(&repo(doc));
        assert!(!cited.is_empty(), "{doc} cites no test");
        for (module, name) in cited {
            let source = repo(&format!("tests/api/{module}.rs"));
            assert!(
                source.contains(&format!("fn {name}(")),
                "{doc} cites {module}::{name}, which tests/api/{module}.rs does not define"
            );
        }
    }
}
