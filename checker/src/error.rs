//! The crate's one error type.
//!
//! Errors are about input the checker could not accept: a file it could not read, a line it could
//! not parse, or a history the chosen model cannot interpret. A history that is merely not
//! linearizable is not an error: that is a verdict (see [`crate::report`]).

use std::path::PathBuf;

/// Everything that can go wrong before a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A line (or EDN form) could not be understood.
    #[error("{}:{line}: expected {expected}, found {found}{}", path.display(), at_column(*column))]
    Parse {
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column (in characters) where the parser stopped, where the format has
        /// multi-line forms that make the line alone too coarse (EDN).
        column: Option<usize>,
        /// What the parser was looking for, in words.
        expected: String,
        /// A short excerpt of what it found instead.
        found: String,
    },

    /// The events do not form a well-formed history (e.g. a completion with no invoke).
    #[error("{}:{line}: {message}", path.display())]
    History {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// The history uses an operation the model does not have (e.g. `cas` on `register`): the
    /// first such op, by the line of its invoke.
    #[error("{}:{line}: model {model} cannot check `{f}` operations{key}: {hint}", path.display())]
    Unsupported {
        path: PathBuf,
        /// 1-based line of the op's invoke.
        line: usize,
        model: &'static str,
        f: &'static str,
        /// ` on key "k"`, or nothing for the default key.
        key: String,
        /// The model to use instead, as `--model NAME`.
        hint: String,
    },

    /// A bad option value, such as an unparsable `--initial`.
    #[error("{0}")]
    Invalid(String),
}

/// The crate's `Result`.
pub type Result<T> = std::result::Result<T, Error>;

/// ` at column N`, or nothing.
fn at_column(column: Option<usize>) -> String {
    column.map_or_else(String::new, |c| format!(" at column {c}"))
}

/// Shortens `s` for an error message, so that one bad line never floods the terminal.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 60; // fits an 80-column terminal after the "file:line: expected ..." prefix
    let s = s.trim_end();
    if s.is_empty() {
        return "an empty line".to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    format!("`{out}`")
}
