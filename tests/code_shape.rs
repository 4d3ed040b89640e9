//! The shape rules of docs/architecture.md, checked on every run of the suite: outside tests and
//! examples, no function over 80 lines and no file over 600 lines (not counting a file's inline
//! `#[cfg(test)]` module). A function is measured from its `fn` line to the closing brace at the
//! same indentation, which is how rustfmt lays every function out.

use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 80;
const MAX_FILE_LINES: usize = 600;

/// Library and binary sources of every crate: `*/src/**.rs`, without `tests/` or `examples/`.
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let skip = name.starts_with('.')
                    || ["target", "tests", "examples", "benches", "results"]
                        .contains(&name.as_str());
                if !skip {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && path.components().any(|c| c.as_os_str() == "src") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(name, first line, length)` of every function longer than the limit.
fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let decl = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
            "pub async fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p));
        let Some(rest) = decl else { continue };
        // A declaration without a body (in a trait) ends with `;` before any `{`.
        let header_end = lines[i..]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'));
        if header_end.is_none_or(|l| !l.contains('{')) {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            let len = end + 2;
            if len > MAX_FN_LINES {
                let name = rest.split(['(', '<']).next().unwrap_or(rest).to_string();
                long.push((name, i + 1, len));
            }
        }
    }
    long
}

#[test]
fn no_long_functions_or_files_outside_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let files = sources(root);
    assert!(files.len() > 50, "found only {} source files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let body = text.split("#[cfg(test)]").next().unwrap_or(&text);
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let n = body.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!(
                "{rel}: {n} lines before its tests (limit {MAX_FILE_LINES})"
            ));
        }
        for (name, line, len) in long_functions(body) {
            problems.push(format!(
                "{rel}:{line}: fn {name} is {len} lines (limit {MAX_FN_LINES})"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "split these into named steps:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_measure_finds_a_long_function_and_skips_declarations() {
    let body: String = (0..MAX_FN_LINES)
        .map(|i| format!("    let x{i} = {i};\n"))
        .collect();
    let text = format!("pub fn long() {{\n{body}}}\n\nfn short() {{\n    1;\n}}\n\nfn decl();\n");
    let long = long_functions(&text);
    assert_eq!(long, vec![("long".to_string(), 1, MAX_FN_LINES + 2)]);
}
