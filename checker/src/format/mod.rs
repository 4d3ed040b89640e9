//! History file formats, and telling them apart.
//!
//! | [`Format`] | what it is | default model |
//! |---|---|---|
//! | `jsonl` | riptide's `history.jsonl` (`jsonl.rs`) | cas-register, or kv if it has appends |
//! | `edn` | Jepsen/Knossos EDN: op maps, one a line or in one vector (`edn.rs`) | cas-register, or kv if it has appends |
//! | `jepsen-log` | Jepsen's text log, `INFO jepsen.util - 3 :invoke :cas [1 4]` (`jepsen_log.rs`) | cas-register |
//! | `porcupine-kv` | Porcupine's kv test data: EDN with `:key`, get/put/append (`porcupine_kv.rs`) | kv (missing key reads `""`) |
//!
//! [`Format::Auto`] looks at the first line that is not blank (nor an EDN `;` comment): `{"` is JSONL, a line naming the
//! `jepsen.util` logger is a Jepsen log, `{:`, `[`, `(` or `#` is EDN, and EDN whose first op has a
//! `:key` is Porcupine's kv format. An empty file is read by its extension (and holds no ops).

pub(crate) mod edn;
mod edn_fast;
mod edn_txn;
pub(crate) mod jepsen_log;
pub(crate) mod jsonl;
mod jsonl_blocks;
mod jsonl_fast;
pub(crate) mod porcupine_kv;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{excerpt, Error, Result};
use crate::history::{Builder, History};

/// A history file format.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Detect from the file's first line.
    #[default]
    Auto,
    Jsonl,
    Edn,
    JepsenLog,
    PorcupineKv,
}

impl Format {
    pub const NAMES: &'static [&'static str] =
        &["auto", "jsonl", "edn", "jepsen-log", "porcupine-kv"];

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }

    /// Decides the format of `text` (read from `path`).
    pub fn detect(path: &Path, text: &str) -> Result<Format> {
        let is_content = |l: &&str| !l.is_empty() && !l.starts_with(';');
        let Some(first) = text.lines().map(str::trim).find(is_content) else {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            return Ok(match ext {
                "log" => Format::JepsenLog,
                "edn" => Format::Edn,
                _ => Format::Jsonl,
            });
        };
        if first.starts_with("{\"") || first.starts_with("{ \"") || first == "{}" {
            Ok(Format::Jsonl)
        } else if first.contains("jepsen.util") {
            Ok(Format::JepsenLog)
        } else if first.starts_with(['{', '[', '(', '#']) {
            // Porcupine's kv data always names a key in each op; Jepsen's EDN rarely does.
            let first_map = first.trim_start_matches(['[', '(', ' ']);
            if first_map.contains(":key ") {
                Ok(Format::PorcupineKv)
            } else {
                Ok(Format::Edn)
            }
        } else {
            Err(Error::Parse {
                column: None,
                path: path.to_path_buf(),
                line: 1 + text
                    .lines()
                    .position(|l| is_content(&l.trim()))
                    .unwrap_or(0),
                expected:
                    "a history: JSON lines, EDN op maps or a Jepsen log (pass --format to choose)"
                        .into(),
                found: excerpt(first),
            })
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s {
            "auto" => Format::Auto,
            "jsonl" | "json" => Format::Jsonl,
            "edn" => Format::Edn,
            "jepsen-log" | "log" => Format::JepsenLog,
            "porcupine-kv" => Format::PorcupineKv,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown format `{s}`; expected one of {}",
                    Format::NAMES.join(", ")
                )))
            }
        })
    }
}

/// Reads and parses a history file. A riptide JSONL file larger than a block is read in
/// blocks, parsed on every core ([`load_history_on`] chooses how many).
pub fn load_history(path: &Path, format: Format) -> Result<History> {
    load_history_on(path, format, None)
}

/// [`load_history`] with `threads` parse workers for a large JSONL file (`None`: one per
/// core).
pub fn load_history_on(path: &Path, format: Format, threads: Option<usize>) -> Result<History> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    // Sized from the file's length, so that a small history is read in one call rather than in
    // reads of 32, 64, 128... bytes.
    let len = file.metadata().map_or(0, |m| m.len());
    let mut head = Vec::with_capacity(len.min(jsonl_blocks::BLOCK as u64) as usize + 1);
    (&mut file)
        .take(jsonl_blocks::BLOCK as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let head_end = head.iter().rposition(|&b| b == b'\n').map_or(0, |e| e + 1);
    let peek = std::str::from_utf8(&head[..head_end]).unwrap_or("");
    let streamed = head.len() == jsonl_blocks::BLOCK
        && match format {
            Format::Jsonl => true,
            Format::Auto => Format::detect(path, peek).ok() == Some(Format::Jsonl),
            _ => false,
        }
        && peek.lines().any(|l| !l.trim().is_empty());
    if !streamed {
        file.read_to_end(&mut head).map_err(io)?;
        let text = String::from_utf8(head).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        return parse_history(path, &text, format);
    }
    let threads = threads.unwrap_or_else(crate::cores);
    let mut builder = Builder::new(path, Format::Jsonl);
    jsonl_blocks::load(
        path,
        file,
        head,
        (threads, jsonl_blocks::BLOCK),
        &mut builder,
    )?;
    Ok(builder.finish())
}

/// Parses history text; `path` is only used in messages and the report.
pub fn parse_history(path: &Path, text: &str, format: Format) -> Result<History> {
    let format = match format {
        Format::Auto => Format::detect(path, text)?,
        f => f,
    };
    let mut builder = Builder::new(path, format);
    match format {
        Format::Auto => unreachable!("resolved above"),
        Format::Jsonl => jsonl::parse(path, text, &mut builder)?,
        Format::Edn => edn::parse(path, text, &mut builder)?,
        Format::JepsenLog => jepsen_log::parse(path, text, &mut builder)?,
        Format::PorcupineKv => porcupine_kv::parse(path, text, &mut builder)?,
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_first_line() {
        let p = Path::new("x");
        let cases = [
            ("{\"process\":0}", Format::Jsonl),
            (
                "\n\nINFO  jepsen.util - 1\t:invoke\t:read\tnil",
                Format::JepsenLog,
            ),
            ("{:process 0, :type :invoke, :f :read}", Format::Edn),
            ("[{:process 0, :type :invoke, :f :read}", Format::Edn),
            (
                "{:process 0, :type :invoke, :f :get, :key \"1\"}",
                Format::PorcupineKv,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Format::detect(p, text).unwrap(), want, "{text}");
        }
        assert_eq!(
            Format::detect(Path::new("e.log"), "").unwrap(),
            Format::JepsenLog
        );
        let msg = Format::detect(p, "\nhello").unwrap_err().to_string();
        assert!(msg.starts_with("x:2: expected a history"), "{msg}");
    }
}
