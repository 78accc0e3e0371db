//! The crate's shape, checked: no import circle among the modules of `src/`, and `lib.rs`'s
//! layout map names every module there is.
//!
//! A module's imports are the `crate::…` and `super::…` paths its file names. Modules are
//! compared at the level where they are siblings: two top-level modules, or two children of the
//! same parent. A child using its parent (or the parent re-exporting a child) is not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every `.rs` file under `src/` with its module path (`["watch", "machine"]`).
fn modules() -> Vec<(Vec<String>, PathBuf)> {
    fn walk(dir: &Path, prefix: &[String], out: &mut Vec<(Vec<String>, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if !matches!(name.as_str(), "mod" | "lib" | "main") {
                    p.push(name);
                }
                out.push((p, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(SRC), &[], &mut out);
    out
}

/// The module paths a file refers to, made absolute.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in code.match_indices("crate::") {
        let path = ident_path(&code[i + "crate::".len()..]);
        refs.push(path);
    }
    // `super` in `a/b.rs` and in `a/b/mod.rs` (both module a::b) is `a`.
    let parent = &module[..module.len().saturating_sub(1)];
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("::") || code[..i].ends_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        let mut path = parent.to_vec();
        path.extend(ident_path(&code[i + "super::".len()..]));
        refs.push(path);
    }
    refs
}

/// `a::b::{c, d}` → `["a", "b"]`: the leading identifiers of a path.
fn ident_path(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// Edges between sibling modules: `from` uses something in (or under) `to`.
fn sibling_edges() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known: BTreeSet<Vec<String>> = modules().into_iter().map(|(m, _)| m).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, path) in modules() {
        let text = std::fs::read_to_string(&path).unwrap();
        for target in references(&module, &text) {
            // The longest known module the path names.
            let Some(target) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|p| known.contains(p))
            else {
                continue;
            };
            // Find the first level where the two paths part: those two are siblings.
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // one contains the other: parent and child
            }
            edges
                .entry(module[..=common].to_vec())
                .or_default()
                .insert(target[..=common].to_vec());
        }
    }
    edges
}

/// A circle in the graph, if any.
fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut circle: Vec<String> = stack[i..].iter().map(|m| m.join("::")).collect();
            circle.push(node.join("::"));
            return Some(circle);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(node, edges, &mut stack, &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_circle_among_modules() {
    let edges = sibling_edges();
    assert!(
        edges.contains_key(&vec!["watch".to_string()]),
        "the scan finds imports: {edges:?}"
    );
    if let Some(circle) = find_cycle(&edges) {
        panic!("import circle: {}", circle.join(" → "));
    }
}

/// The top-level modules `module` uses.
fn uses(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>, module: &str) -> Vec<String> {
    edges
        .get(&vec![module.to_string()])
        .into_iter()
        .flatten()
        .map(|m| m.join("::"))
        .collect()
}

#[test]
fn the_boundaries_lib_rs_claims_hold() {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let map: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .flat_map(str::split_whitespace)
        .collect();
    let map = map.join(" ");
    let edges = sibling_edges();
    // The claims, as lib.rs words them, and what each means in imports.
    assert!(
        map.contains("`watch`, `output` and `position` never import each other"),
        "lib.rs no longer makes the claim this test checks"
    );
    for from in ["watch", "output", "position"] {
        for to in ["watch", "output", "position"] {
            assert!(
                from == to || !uses(&edges, from).contains(&to.to_string()),
                "{from} imports {to}: {:?}",
                uses(&edges, from)
            );
        }
    }
    assert!(
        map.contains("by `watch` only through a closure that `daemon` builds"),
        "lib.rs no longer makes the claim this test checks"
    );
    assert!(!uses(&edges, "watch").contains(&"filter".to_string()));
    assert!(
        map.contains("`frame`") && map.contains("Imports nothing of ours"),
        "lib.rs no longer says frame imports nothing of ours"
    );
    assert_eq!(uses(&edges, "frame"), Vec::<String>::new());
}

#[test]
fn the_check_finds_a_circle_when_there_is_one() {
    let m = |s: &str| vec![s.to_string()];
    let mut edges = BTreeMap::new();
    edges.insert(m("frame"), BTreeSet::from([m("position")]));
    edges.insert(m("position"), BTreeSet::from([m("frame")]));
    assert!(find_cycle(&edges).is_some());
    edges.remove(&m("frame"));
    assert!(find_cycle(&edges).is_none());
    assert_eq!(ident_path("output::file::{A, B}"), ["output", "file"]);
}

#[test]
fn the_layout_map_in_lib_rs_names_every_module() {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let map: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let top: BTreeSet<String> = modules()
        .into_iter()
        .filter_map(|(m, _)| m.first().cloned())
        .collect();
    for module in top {
        let named = map.lines().any(|l| {
            l.trim_start_matches("//!")
                .trim_start()
                .starts_with(&module)
        });
        assert!(named, "lib.rs's layout map does not name `{module}`");
    }
}

/// Lines of a source file before its `#[cfg(test)]` module.
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|l| l.trim_start() != "#[cfg(test)]")
        .count()
}

/// Every `.rs` file under a folder of the repository, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_source_file_is_over_400_lines_outside_its_tests() {
    for (_, path) in modules() {
        let n = code_lines(&std::fs::read_to_string(&path).unwrap());
        assert!(n <= 400, "{}: {n} lines before its tests", path.display());
    }
    assert_eq!(code_lines("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
}

#[test]
fn no_test_file_is_over_700_lines() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let files = rust_files(&tests);
    assert!(files.len() > 10, "the scan finds the tests: {files:?}");
    for path in files {
        let n = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(n <= 700, "{}: {n} lines", path.display());
    }
}

#[test]
fn leadership_resume_and_checkpoint_say_what_they_mean_with_enums_not_booleans() {
    let src = Path::new(SRC);
    let files = [
        src.join("resume.rs"),
        src.join("checkpoint.rs"),
        src.join("leader/mod.rs"),
        src.join("leader/lease.rs"),
        src.join("leader/term.rs"),
    ];
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let code = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        assert!(
            !code.contains("Result<bool"),
            "{}: Result<bool>",
            path.display()
        );
        // A parameter list that takes a bool: `fn name(... x: bool ...)`.
        for (i, _) in code.match_indices("fn ") {
            let signature = &code[i..i + code[i..].find('{').unwrap_or(0)];
            let params = &signature[..signature.find(')').unwrap_or(0)];
            assert!(
                !params.contains(": bool"),
                "{}: {}",
                path.display(),
                signature.trim()
            );
        }
    }
}

#[test]
fn test_support_is_a_crate_not_included_by_path_and_keeps_no_dead_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<PathBuf> = ["tests", "benches"]
        .iter()
        .flat_map(|d| rust_files(&root.join(d)))
        .collect();
    assert!(files.len() > 10, "the scan finds the tests: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in ["#[path", "dead_code"] {
            // This file names what it looks for.
            if path.ends_with("layout.rs") {
                continue;
            }
            assert!(
                !text.contains(banned),
                "{}: {banned} (use the testkit crate, tests/support)",
                path.display()
            );
        }
    }
}

#[test]
fn the_image_build_gets_every_crate_cargo_reads_and_the_license_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (i, _) in manifest.match_indices("path = \"") {
        let path = &manifest[i + 8..];
        let path = &path[..path.find('"').unwrap()];
        assert!(
            dockerfile.contains(&format!("COPY {path} ")),
            "the Dockerfile does not copy {path}, which Cargo.toml names"
        );
        assert!(
            ignore.contains(&format!("!{path}/")),
            ".dockerignore leaves {path} out of the build context"
        );
    }
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}

/// The headings of a Markdown page, without their `#`s.
fn headings(page: &Path) -> Vec<String> {
    std::fs::read_to_string(page)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .collect()
}

#[test]
fn every_section_a_shipped_file_cites_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        "src",
        "filebeat",
        "logstash",
        "es-templates",
        "kibana",
        "opensearch-dashboards",
        "loki",
        "deploy",
    ];
    let mut cited = 0;
    for dir in dirs {
        for path in all_files(&root.join(dir)) {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            // `README, "Section"` or `docs/page.md, "Section"` (a comma or not).
            for page in ["README", "docs/"] {
                for (i, _) in text.match_indices(page) {
                    let rest = &text[i..];
                    let name_end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
                        .unwrap_or(rest.len());
                    let name = &rest[..name_end];
                    let Some(quoted) = rest[name_end..]
                        .strip_prefix(", \"")
                        .or_else(|| rest[name_end..].strip_prefix(" \""))
                    else {
                        continue;
                    };
                    if name != "README" && !name.ends_with(".md") {
                        continue;
                    }
                    let Some(close) = quoted.find('"') else {
                        continue;
                    };
                    // A citation may wrap onto the next comment line.
                    let section: Vec<&str> = quoted[..close]
                        .lines()
                        .map(|l| l.trim().trim_start_matches(['#', '/']).trim())
                        .collect();
                    let section = section.join(" ");
                    let file = if name == "README" {
                        root.join("README.md")
                    } else {
                        root.join(name)
                    };
                    assert!(file.exists(), "{}: cites {name}", path.display());
                    assert!(
                        headings(&file).contains(&section),
                        "{}: cites {name}, \"{section}\", which has no such section",
                        path.display()
                    );
                    cited += 1;
                }
            }
        }
    }
    assert!(cited >= 5, "the scan finds the citations");
}

/// Every file under a folder, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_readme_is_a_short_hub_that_links_every_page_of_the_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let n = readme.lines().count();
    assert!(n <= 250, "README.md: {n} lines");
    // The two set-up commands come right after the pitch, before any table.
    let commands = readme.find("cargo run --release -- run").unwrap();
    // The quick start reads back what it wrote: tail and summary take the file `run` writes
    // from the same variable, with no other path given.
    let block = &readme[readme.find("```sh").unwrap()..]
        [..readme[commands..].find("```").unwrap() + commands - readme.find("```sh").unwrap()];
    assert!(
        block.contains("export KUBE_EVENT_LOGGER_OUTPUT_FILE="),
        "{block}"
    );
    for command in ["-- run ", "-- tail", "-- summary"] {
        let line = block
            .lines()
            .find(|l| l.contains(command))
            .unwrap_or_else(|| panic!("{command}: {block}"));
        assert!(
            !line.contains("--output-file") && !line.contains(".json"),
            "{line}"
        );
    }
    assert!(
        readme.contains("No image is published"),
        "the set-up says how to get an image"
    );
    let first_table = readme.find("\n|").unwrap();
    assert!(commands < first_table, "the set-up commands come first");
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            readme.contains(&format!("](docs/{name})")),
            "README.md does not link docs/{name}"
        );
    }
    // Every relative link in the README and the docs leads to a file that exists.
    let pages = std::iter::once(root.join("README.md")).chain(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap()];
            let file = target.split('#').next().unwrap();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            let path = page.parent().unwrap().join(file);
            assert!(path.exists(), "{}: broken link {target}", page.display());
        }
    }
}
