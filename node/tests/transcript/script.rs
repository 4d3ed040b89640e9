//! Reading and writing script files: commands, their expected output blocks, and everything else
//! (comments, blank lines) kept verbatim so that regenerating a file changes only the outputs.

/// One piece of a script file.
pub enum Item {
    /// A comment or blank line, written back unchanged.
    Verbatim(String),
    /// A command line (1-based `line`) and the output block below it, if any.
    Command {
        line: usize,
        text: String,
        expected: Option<Vec<String>>,
    },
}

/// The line between a command and its expected output.
pub const SEPARATOR: &str = "----";

/// Assertions check facts on their own and have no output block.
pub fn is_assertion(command: &str) -> bool {
    command.split_whitespace().next() == Some("assert")
}

pub fn parse(text: &str) -> Result<Vec<Item>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let line = lines[k];
        k += 1;
        let number = k;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            items.push(Item::Verbatim(line.to_string()));
            continue;
        }
        if line == SEPARATOR {
            return Err(format!("line {k}: {SEPARATOR} without a command above it"));
        }
        let has_block = lines.get(k) == Some(&SEPARATOR);
        if has_block && is_assertion(line) {
            return Err(format!(
                "line {k}: an assertion has no output block; remove the {SEPARATOR} below it"
            ));
        }
        let expected = has_block.then(|| {
            k += 1;
            let start = k;
            while k < lines.len() && !lines[k].trim().is_empty() {
                k += 1;
            }
            lines[start..k].iter().map(|s| s.to_string()).collect()
        });
        items.push(Item::Command {
            line: number,
            text: line.to_string(),
            expected,
        });
    }
    Ok(items)
}

/// The file again, with `outputs[k]` as the block of the `k`-th non-assertion command.
pub fn render(items: &[Item], outputs: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut outputs = outputs.iter();
    for item in items {
        match item {
            Item::Verbatim(line) => out += line,
            Item::Command { text, .. } => {
                out += text;
                if !is_assertion(text) {
                    out += &format!("\n{SEPARATOR}");
                    for line in outputs.next().into_iter().flatten() {
                        out += &format!("\n{line}");
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A line diff of `expected` against `actual`: unchanged lines start with two spaces, removed with
/// `- `, added with `+ ` (longest common subsequence, so a moved line shows as one of each).
pub fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: length of the LCS of expected[i..] and actual[j..].
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out += &format!("  {}\n", expected[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
            out += &format!("+ {}\n", actual[j]);
            j += 1;
        } else {
            out += &format!("- {}\n", expected[i]);
            i += 1;
        }
    }
    out
}
