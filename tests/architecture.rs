//! The layout keeps its promises: each part's door (`src/<part>/mod.rs`, or the part's one
//! file) says which other parts it uses in a `//! Uses:` line; the code uses no others; the
//! parts form no cycle; the pure parts import no network or runtime code; and no module, at
//! any depth, is part of an import cycle.
//!
//! Read from the source text (every `crate::…` and `super::…` path outside comments and
//! `#[cfg(test)]` modules), so a new import that breaks the layering fails here, with the
//! file that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates a part marked `pure` in its `Uses:` line must not name.
const NOT_IN_PURE_PARTS: &[&str] = &["tokio", "pingora", "hyper", "tokio_tungstenite"];

struct Module {
    file: PathBuf,
    /// Code without comments and test modules.
    code: String,
}

/// Every module of the library, by path (`front_door::tunnel`); the crate root is "".
fn modules() -> BTreeMap<String, Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            found.insert(
                parts.join("::"),
                Module {
                    file: path,
                    code: code_of(&text),
                },
            );
        }
    }
    found
}

/// The text without comment lines and without the `#[cfg(test)]` module at the end.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths that start with `prefix` (`crate::` or `super::`): the words after it, up to the
/// first that is not a lowercase name.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut words = Vec::new();
        let mut tail = rest;
        loop {
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if end == 0 {
                break;
            }
            words.push(&tail[..end]);
            match tail[end..].strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        paths.push(words);
    }
    paths
}

/// The deepest known module a path names.
fn resolve(known: &BTreeMap<String, Module>, words: &[&str]) -> Option<String> {
    (1..=words.len())
        .rev()
        .map(|n| words[..n].join("::"))
        .find(|name| known.contains_key(name))
}

/// The modules each module uses (its own children included, itself excluded).
fn module_graph(known: &BTreeMap<String, Module>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (name, module) in known {
        let mut uses = BTreeSet::new();
        for words in paths_after(&module.code, "crate::") {
            uses.extend(resolve(known, &words));
        }
        let parent: Vec<&str> = name.split("::").collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        for words in paths_after(&module.code, "super::") {
            let full: Vec<&str> = parent.iter().copied().chain(words).collect();
            uses.extend(resolve(known, &full).or_else(|| Some(parent.join("::"))));
        }
        // `use child::…` / `child::item` from a parent: a child declared with `mod`.
        for child in known.keys() {
            if let Some(short) = child
                .strip_prefix(name.as_str())
                .and_then(|c| c.strip_prefix("::").or(Some(c).filter(|_| name.is_empty())))
                .filter(|c| !c.is_empty() && !c.contains("::"))
                && module.code.contains(&format!("{short}::"))
            {
                uses.insert(child.clone());
            }
        }
        uses.remove(name);
        graph.insert(name.clone(), uses);
    }
    graph
}

fn part_of(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

/// A cycle in `graph`, if there is one, as the list of its nodes.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => {
                let start = path.iter().position(|n| n == node).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            Some(false) => return None,
            None => {}
        }
        state.insert(node.to_owned(), true);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_owned(), false);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut state, &mut Vec::new()))
}

/// Each part's `//! Uses:` line: the parts it names, and whether it says `pure`.
fn declared_uses(known: &BTreeMap<String, Module>) -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let mut declared = BTreeMap::new();
    for (name, module) in known {
        if name.is_empty() || name.contains("::") {
            continue;
        }
        let text = std::fs::read_to_string(&module.file).unwrap();
        let line = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .find_map(|l| l.strip_prefix("//! Uses:"))
            .unwrap_or_else(|| panic!("{} has no `//! Uses:` line", module.file.display()));
        let line = line.trim().trim_end_matches('.');
        let (names, pure) = match line.split_once(';') {
            Some((names, rest)) => (names, rest.contains("pure")),
            None => (line, false),
        };
        let parts = names
            .split(',')
            .map(|p| p.trim().trim_matches('`').to_owned())
            .filter(|p| !p.is_empty() && p != "nothing")
            .collect();
        declared.insert(name.clone(), (parts, pure));
    }
    declared
}

#[test]
fn each_part_uses_only_the_parts_its_door_names() {
    let known = modules();
    let graph = module_graph(&known);
    let declared = declared_uses(&known);
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        let part = part_of(module);
        let Some((allowed, _)) = declared.get(part) else {
            continue;
        };
        for used in uses {
            let other = part_of(used);
            if other != part && !other.is_empty() && !allowed.contains(other) {
                wrong.push(format!(
                    "{} uses `{used}`, but `{part}` does not name `{other}` in its Uses line",
                    known[module].file.display()
                ));
            }
        }
    }
    for (part, (allowed, _)) in &declared {
        for other in allowed {
            assert!(
                declared.contains_key(other),
                "`{part}` names `{other}`, which is not a part"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn parts_form_no_cycle() {
    let known = modules();
    let declared = declared_uses(&known);
    let parts: BTreeMap<String, BTreeSet<String>> = declared
        .iter()
        .map(|(part, (uses, _))| (part.clone(), uses.clone()))
        .collect();
    assert!(parts.len() >= 8, "found only {parts:?}");
    assert_eq!(
        find_cycle(&parts),
        None,
        "the parts' Uses lines form a cycle"
    );
}

#[test]
fn no_module_is_in_an_import_cycle() {
    let known = modules();
    let mut graph = module_graph(&known);
    // The crate root declares every part; that is not a use.
    graph.remove("");
    for uses in graph.values_mut() {
        uses.remove("");
    }
    assert_eq!(
        find_cycle(&graph),
        None,
        "modules import each other in a cycle"
    );
}

#[test]
fn pure_parts_import_no_runtime_or_network_code() {
    let known = modules();
    let declared = declared_uses(&known);
    let mut pure_parts = 0;
    for (part, (_, pure)) in &declared {
        if !pure {
            continue;
        }
        pure_parts += 1;
        for (name, module) in &known {
            if part_of(name) != part {
                continue;
            }
            for banned in NOT_IN_PURE_PARTS {
                assert!(
                    !module.code.contains(&format!("{banned}::")),
                    "{} is in the pure part `{part}` but uses {banned}",
                    module.file.display()
                );
            }
        }
    }
    assert!(pure_parts > 0, "no part says it is pure");
}

#[test]
fn the_checks_see_imports() {
    let code = "use crate::hub::protocol::Event;\nlet x = super::ws::Query;\n// crate::app\n";
    let code = code_of(code);
    assert_eq!(paths_after(&code, "crate::"), vec![vec!["hub", "protocol"]]);
    assert_eq!(paths_after(&code, "super::"), vec![vec!["ws"]]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert!(find_cycle(&graph).is_some());
}
