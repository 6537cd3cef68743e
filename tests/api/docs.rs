//! The documents that describe the code stay true to it: the code map in
//! ARCHITECTURE.md names every file under `src/` (and no file that is
//! gone), every test the documents cite exists, every relative link leads
//! somewhere, the settings table is `pos serve --help`'s, and no module
//! imports a layer above its own.

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

/// The file of test module `module`: `tests/api/<module>.rs`, or its
/// folder's `mod.rs`.
fn module_file(module: &str) -> Option<String> {
    [
        format!("tests/api/{module}.rs"),
        format!("tests/api/{module}/mod.rs"),
    ]
    .into_iter()
    .find(|f| Path::new(env!("CARGO_MANIFEST_DIR")).join(f).exists())
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
            (is_test_name && module_file(module).is_some())
                .then(|| (module.to_string(), name.to_string()))
        })
        .collect()
}

/// The README, ARCHITECTURE.md and every Markdown file under `docs/`.
fn documents() -> Vec<String> {
    let mut docs = BTreeSet::new();
    files_under(Path::new("docs"), &mut docs);
    let mut all = vec![
        "README.md".to_string(),
        "ARCHITECTURE.md".to_string(),
        "deploy/kubernetes/README.md".to_string(),
    ];
    all.extend(docs.into_iter().filter(|d| d.ends_with(".md")));
    all
}

#[test]
fn every_test_the_documents_cite_exists() {
    for doc in documents() {
        for (module, name) in cited_tests(&repo(&doc)) {
            let file = module_file(&module).unwrap_or_default();
            assert!(
                repo(&file).contains(&format!("fn {name}(")),
                "{doc} cites {module}::{name}, which {file} does not define"
            );
        }
    }
    assert!(!cited_tests(&repo("ARCHITECTURE.md")).is_empty());
}

/// A heading's anchor as GitHub makes it: lower case, punctuation gone,
/// spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    markdown
        .lines()
        .filter(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
            }
            !fenced
        })
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// The `](target)` links of a Markdown text that are not web addresses.
fn relative_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:") && !t.contains(' '))
        .map(String::from)
        .collect()
}

#[test]
fn every_relative_link_of_the_documents_leads_to_a_file_and_its_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in documents() {
        let here = root.join(&doc);
        let dir = here.parent().expect("a folder");
        for link in relative_links(&repo(&doc)) {
            let (path, heading) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                here.clone()
            } else {
                dir.join(path)
            };
            assert!(target.exists(), "{doc}: the link {link} leads nowhere");
            if !heading.is_empty() {
                let text = std::fs::read_to_string(&target).expect("a Markdown file");
                assert!(
                    anchors(&text).contains(heading),
                    "{doc}: the link {link} names no heading of {}",
                    target.display()
                );
            }
        }
    }
}

/// The settings table of docs/operations.md: each row's variable and
/// default, in order.
fn documented_settings() -> Vec<(String, String)> {
    let ops = repo("docs/operations.md");
    let table = ops
        .split("| variable | default | meaning |")
        .nth(1)
        .expect("docs/operations.md has the settings table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            )
        })
        .collect()
}

#[test]
fn the_settings_table_is_the_one_pos_serve_help_prints() {
    let documented = documented_settings();
    let names: Vec<&str> = documented.iter().map(|(n, _)| n.as_str()).collect();
    let settings: Vec<&str> = pos::config::SETTINGS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, settings,
        "the table and config::SETTINGS list other settings"
    );
    for ((name, default), (_, meaning)) in documented.iter().zip(pos::config::SETTINGS) {
        let help_default = meaning
            .rsplit_once('[')
            .and_then(|(_, d)| d.strip_suffix(']'))
            .unwrap_or_default();
        assert_eq!(
            default.replace(['`', ','], ""),
            help_default.replace(',', ""),
            "{name}: the table says {default}, pos serve --help {help_default}"
        );
    }
}

/// The layers, lowest first: a module may use its own layer and those
/// below. `http` (both front ends) reaches the actors and the store only
/// through `service`; `startup` and `cli` wire everything.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &[
        "clock",
        "ids",
        "client_address",
        "config",
        "metrics",
        "telemetry",
    ],
    &["store", "mirror"],
    &["actors", "auth"],
    &["service"],
    &["http"],
    &["startup", "cli", "lib", "main"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of LAYERS"))
}

/// The top-level modules a file names as `crate::module` (outside comments).
fn imported_modules(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.split("crate::").skip(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_module_imports_a_layer_above_it_and_http_goes_through_the_service() {
    let mut files = BTreeSet::new();
    files_under(Path::new("src"), &mut files);
    let mut wrong = Vec::new();
    for file in files.iter().filter(|f| f.ends_with(".rs")) {
        let module = file["src/".len()..]
            .split(['/', '.'])
            .next()
            .expect("a file under src/");
        let own = layer(module);
        for used in imported_modules(&repo(file)) {
            let skips_service = module == "http" && (used == "actors" || used == "store");
            if layer(&used) > own || skips_service {
                wrong.push(format!("{file} uses crate::{used}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn the_layer_check_sees_imports() {
    let found =
        imported_modules("use crate::store::x;\n// crate::http\nlet a = crate::actors::y();");
    assert_eq!(
        found,
        BTreeSet::from(["store".to_string(), "actors".to_string()])
    );
}
