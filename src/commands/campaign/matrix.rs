//! The campaign's matrix: `--matrix KEY=V1,V2` options, their product in a stable order, and
//! the `riptide test` flags each cell adds.
//!
//! A key is a `riptide test` flag without its dashes (`nemesis`, `workload`, `nodes`,
//! `unsafe-bug`, ...). The product is taken in the order the keys were given, the last key
//! varying fastest, as Jepsen's `test-all` does; the value `none` of `unsafe-bug` adds no flag
//! (the correct node), so one campaign can hold the node and its bugs side by side.

use std::collections::BTreeMap;

/// Flags the campaign sets for every run itself: a matrix key or a test option may not set
/// them.
pub const OWNED_FLAGS: [&str; 4] = ["seed", "results-dir", "announce-run-dir", "no-progress"];

/// One `--matrix KEY=V1,V2`.
pub fn parse(spec: &str) -> Result<(String, Vec<String>), String> {
    let (key, values) = spec.split_once('=').ok_or_else(|| {
        format!("--matrix {spec}: expected KEY=V1,V2 (e.g. nemesis=kill,partition)")
    })?;
    let key = key.trim_start_matches("--").trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "--matrix {spec}: `{key}` is not a riptide test flag name"
        ));
    }
    if OWNED_FLAGS.contains(&key) {
        return Err(format!(
            "--matrix {spec}: the campaign sets --{key} itself (give --seed/--results-dir before `--`)"
        ));
    }
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(|v| v.is_empty()) {
        return Err(format!("--matrix {spec}: a value is empty"));
    }
    Ok((key.to_string(), values))
}

/// Every cell of the matrix, in a stable order: one map of key → value per cell. No matrix is
/// one empty cell.
pub fn cells(matrix: &[(String, Vec<String>)]) -> Vec<BTreeMap<String, String>> {
    let mut cells = vec![BTreeMap::new()];
    for (key, values) in matrix {
        let mut next = Vec::with_capacity(cells.len() * values.len());
        for cell in &cells {
            for value in values {
                let mut c = cell.clone();
                c.insert(key.clone(), value.clone());
                next.push(c);
            }
        }
        cells = next;
    }
    cells
}

/// The order of cells for display: the matrix's key order, not the map's.
pub fn label(matrix: &[(String, Vec<String>)], cell: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = matrix
        .iter()
        .filter_map(|(k, _)| cell.get(k).map(|v| format!("{k}={v}")))
        .collect();
    parts.join(" ")
}

/// The `riptide test` flags of a cell.
pub fn flags(matrix: &[(String, Vec<String>)], cell: &BTreeMap<String, String>) -> Vec<String> {
    let mut flags = Vec::new();
    for (key, _) in matrix {
        let Some(value) = cell.get(key) else { continue };
        if key == "unsafe-bug" && value == "none" {
            continue;
        }
        flags.push(format!("--{key}"));
        flags.push(value.clone());
    }
    flags
}

/// Checks the test options given after `--` against what the campaign and the matrix set.
/// `--no-progress` is accepted and dropped (every run gets it anyway).
pub fn check_test_args(
    test_args: &[String],
    matrix: &[(String, Vec<String>)],
) -> Result<Vec<String>, String> {
    let mut kept = Vec::new();
    for arg in test_args {
        let name = arg.trim_start_matches("--");
        let name = name.split('=').next().unwrap_or(name);
        if !arg.starts_with("--") {
            kept.push(arg.clone());
            continue;
        }
        if name == "no-progress" {
            continue;
        }
        if OWNED_FLAGS.contains(&name) {
            return Err(format!(
                "{arg} after `--`: the campaign sets it for every run; give the campaign's --{name} before `--`"
            ));
        }
        if matrix.iter().any(|(k, _)| k == name) {
            return Err(format!(
                "{arg} after `--` and --matrix {name}=... both set --{name}; keep one"
            ));
        }
        kept.push(arg.clone());
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(specs: &[&str]) -> Vec<(String, Vec<String>)> {
        specs.iter().map(|s| parse(s).unwrap()).collect()
    }

    #[test]
    fn the_product_is_in_the_given_order_with_the_last_key_fastest() {
        let matrix = m(&["nemesis=kill,partition", "nodes=3,5"]);
        let cells = cells(&matrix);
        let labels: Vec<String> = cells.iter().map(|c| label(&matrix, c)).collect();
        assert_eq!(
            labels,
            [
                "nemesis=kill nodes=3",
                "nemesis=kill nodes=5",
                "nemesis=partition nodes=3",
                "nemesis=partition nodes=5"
            ]
        );
        assert_eq!(
            flags(&matrix, &cells[1]),
            ["--nemesis", "kill", "--nodes", "5"]
        );
        assert_eq!(super::cells(&[]).len(), 1, "no matrix is one cell");
    }

    #[test]
    fn unsafe_bug_none_is_the_correct_node() {
        let matrix = m(&["unsafe-bug=none,stale-read"]);
        let cells = cells(&matrix);
        assert!(flags(&matrix, &cells[0]).is_empty());
        assert_eq!(flags(&matrix, &cells[1]), ["--unsafe-bug", "stale-read"]);
    }

    #[test]
    fn bad_specs_and_clashing_options_are_clear_errors() {
        assert!(parse("nemesis").unwrap_err().contains("KEY=V1,V2"));
        assert!(parse("seed=1,2")
            .unwrap_err()
            .contains("sets --seed itself"));
        assert!(parse("nodes=3,").unwrap_err().contains("empty"));
        let matrix = m(&["nemesis=kill"]);
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = check_test_args(&args(&["--nemesis", "all"]), &matrix).unwrap_err();
        assert!(err.contains("both set --nemesis"), "{err}");
        let err = check_test_args(&args(&["--seed=3"]), &[]).unwrap_err();
        assert!(err.contains("before `--`"), "{err}");
        let kept = check_test_args(&args(&["--no-progress", "--nodes", "3"]), &[]).unwrap();
        assert_eq!(kept, ["--nodes", "3"]);
    }
}
