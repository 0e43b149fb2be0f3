//! What the binaries read: the `ORDERS_*` and `PAYMENT_SIM__*` names in the sources of each binary
//! and its path dependencies, and the variables ./dev passes to each binary it starts.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use orders_tests::repo_root;

use crate::repo::{quoted_after, read};

/// The crate directory whose package is `name`, among services/* and shared/*.
pub fn crate_dir(name: &str) -> PathBuf {
    for group in ["services", "shared"] {
        for entry in std::fs::read_dir(repo_root().join(group)).unwrap().flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            if text.lines().any(|l| l.trim() == format!("name = \"{name}\"")) {
                return entry.path();
            }
        }
    }
    panic!("no crate named {name} under services/ or shared/")
}

/// The crate and every crate of ours it depends on, through `path` and workspace dependencies.
pub fn with_path_dependencies(dir: &Path) -> BTreeSet<PathBuf> {
    let workspace = read("Cargo.toml");
    let (mut seen, mut todo) = (BTreeSet::new(), vec![dir.canonicalize().unwrap()]);
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let section = manifest
            .split("\n[")
            .find(|s| s.starts_with("dependencies]"))
            .unwrap_or("");
        for line in section.lines().skip(1) {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            let path = if line.contains("workspace = true") || line.contains(".workspace") {
                workspace
                    .lines()
                    .find(|l| l.split('=').next().unwrap_or("").trim() == name)
                    .and_then(|l| quoted_after(l, "path = "))
                    .map(|p| repo_root().join(p))
            } else {
                quoted_after(line, "path = ").map(|p| dir.join(p))
            };
            if let Some(path) = path {
                todo.push(path.canonicalize().unwrap());
            }
        }
    }
    seen
}

pub fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() && name != "tests" {
            rust_sources(&path, out);
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

pub fn is_variable_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every string literal `"ORDERS_…"`/`"PAYMENT_SIM__…"` in the non-test code of a crate and its
/// dependencies. A literal prefix such as `"PAYMENT_SIM__"` is joined with the `"NAME" =>` match arms
/// of its file, which is how a prefixed configuration names its settings.
pub fn variables_read_by(binary: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in with_path_dependencies(&crate_dir(binary)) {
        let mut files = Vec::new();
        rust_sources(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let mut prefixes = Vec::new();
            for prefix in ["ORDERS_", "PAYMENT_SIM__"] {
                for start in code.match_indices(&format!("\"{prefix}")).map(|(i, _)| i + 1) {
                    let Some(end) = code[start..].find('"') else {
                        continue;
                    };
                    let literal = &code[start..start + end];
                    if !is_variable_name(literal) {
                        continue;
                    }
                    if literal.ends_with("__") {
                        prefixes.push(literal.to_string());
                    } else {
                        names.insert(literal.to_string());
                    }
                }
            }
            for prefix in prefixes {
                for (i, _) in code.match_indices("\" =>") {
                    let arm = &code[..i];
                    let setting = &arm[arm.rfind('"').unwrap() + 1..];
                    if is_variable_name(setting) {
                        names.insert(format!("{prefix}{setting}"));
                    }
                }
            }
        }
    }
    names
}

/// The variables ./dev sets for a binary: those in the function that starts it, plus the region's
/// `service_env` when that function uses it. None when ./dev does not start the binary.
pub fn variables_dev_passes(binary: &str) -> Option<BTreeSet<String>> {
    let dev = read("dev");
    let function = |name: &str| -> Option<String> {
        let start = dev.find(&format!("\n{name}() {{"))?;
        let body = &dev[start + 1..];
        Some(body[..body.find("\n}").unwrap()].to_string())
    };
    let names_in = |body: &str| -> BTreeSet<String> {
        body.match_indices('"')
            .filter_map(|(i, _)| {
                let rest = &body[i + 1..];
                let name = &rest[..rest.find('=')?];
                is_variable_name(name).then(|| name.to_string())
            })
            .filter(|n| n.starts_with("ORDERS_") || n.starts_with("PAYMENT_SIM__"))
            .collect()
    };
    let starter = dev
        .lines()
        .filter_map(|l| l.split_once("() {").map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter_map(function)
        .find(|body| body.contains(&format!("$BIN/{binary}\"")))?;
    let mut names = names_in(&starter);
    if starter.contains("$(service_env") {
        names.extend(names_in(
            &function("service_env").expect("./dev defines service_env"),
        ));
    }
    Some(names)
}
