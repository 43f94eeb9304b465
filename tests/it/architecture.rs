//! The layering of docs/architecture.md, checked on the source: the shared state sits
//! below the features, and the lower layers never reach up. A `use` that breaks it fails
//! here with the file and the line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(file:line, line)` of every line under `src/<folder>` that names `crate::<module>`.
fn references(folder: &str, modules: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut found = Vec::new();
    let files = if root.is_dir() {
        sources(&root)
    } else {
        vec![root.with_extension("rs")]
    };
    assert!(!files.is_empty(), "no sources under {}", root.display());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for module in modules {
                let needle = format!("crate::{module}");
                let hit = line.match_indices(&needle).any(|(at, _)| {
                    !line[at + needle.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn features_workers_and_the_edge_never_import_the_wiring() {
    for folder in ["bot", "jobs", "server", "state"] {
        let hits = references(folder, &["app"]);
        assert!(
            hits.is_empty(),
            "src/{folder} imports app.rs:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn the_shared_state_imports_only_what_lies_below_it() {
    let hits = references("state", &["bot", "jobs", "server", "cli", "demo"]);
    assert!(
        hits.is_empty(),
        "src/state reaches up:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_lower_layers_never_reach_up() {
    for folder in ["engine", "slack", "store"] {
        let hits = references(
            folder,
            &["app", "state", "bot", "jobs", "server", "cli", "demo"],
        );
        assert!(
            hits.is_empty(),
            "src/{folder} reaches up:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn features_never_reach_into_the_edge_or_the_workers() {
    let hits = references("bot", &["server", "jobs"]);
    assert!(
        hits.is_empty(),
        "src/bot reaches into the edge or workers:\n{}",
        hits.join("\n")
    );
}
