//! Jepsen's text log of a test run (`jepsen.log`), as in Porcupine's etcd test data.
//!
//! ```text
//! INFO  jepsen.util - 3 :invoke :cas [1 4]
//! INFO  jepsen.util - 3 :ok :cas [1 4]
//! INFO  jepsen.util - 1 :info :write :timed-out
//! ```
//!
//! (fields are separated by tabs in real logs, shown as spaces here). Each op line is
//! `PROCESS :TYPE :F VALUE` after the `jepsen.util` logger name; the value is EDN
//! (`nil`, `N`, `[FROM TO]`, or a keyword such as `:timed-out` on completions that carry none).
//! Lines from other loggers carry no ops and are skipped; a `jepsen.util` line that is not an op,
//! or a file with no op line at all, is an error. An op with no completion by the end of the file
//! is indeterminate (info). Process `:nemesis` is ignored.

use std::path::Path;

use super::edn::Reader;
use crate::error::{excerpt, Error, Result};
use crate::history::{Builder, Event, EventType, EventValue, Process, RawValue};

const LOGGER: &str = "jepsen.util";
const LINE: &str =
    "`jepsen.util - PROCESS :TYPE :F VALUE`, e.g. `INFO  jepsen.util - 3 :invoke :cas [1 4]`";

/// Reads every op line of `text` into `builder`.
pub(crate) fn parse(path: &Path, text: &str, builder: &mut Builder) -> Result<()> {
    let mut ops = 0usize;
    let mut nonblank = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        nonblank += 1;
        let Some(at) = find_logger(raw) else {
            continue; // another logger's line
        };
        let bad = |expected: String| Error::Parse {
            column: None,
            path: path.to_path_buf(),
            line: line_no,
            expected,
            found: excerpt(raw),
        };
        let rest = raw[at + LOGGER.len()..].trim_start_matches([' ', '\t', '-', ':']);
        let (process, rest) = token(rest);
        let (kind, rest) = token(rest);
        let (f, rest) = token(rest);
        if f.is_empty() {
            return Err(bad(LINE.into()));
        }
        let value_text = rest.trim();
        let process = if let Ok(p) = process.parse::<u64>() {
            Process::Client(p)
        } else if process.starts_with(':') {
            Process::Nemesis
        } else {
            return Err(bad(format!("a process number in {LINE}")));
        };
        let kind = kind
            .strip_prefix(':')
            .and_then(EventType::parse)
            .ok_or_else(|| {
                bad(format!(
                    ":invoke, :ok, :fail or :info as the type in {LINE}"
                ))
            })?;
        let Some(f) = f.strip_prefix(':') else {
            return Err(bad(format!("a keyword such as :read as the op in {LINE}")));
        };
        let value = if value_text.is_empty() {
            EventValue::Scalar(RawValue::Nil)
        } else {
            let mut r = Reader::new(value_text);
            r.skip_ws();
            match r.read() {
                Ok(form) => super::edn::event_value(f, kind, &form).map_err(&bad)?,
                Err(e) => return Err(bad(format!("{e} as the value in {LINE}"))),
            }
        };
        builder.push(Event {
            line: line_no,
            process,
            kind,
            f,
            key: None,
            value,
        })?;
        ops += 1;
    }
    if ops == 0 && nonblank > 0 {
        return Err(Error::Parse {
            column: None,
            path: path.to_path_buf(),
            line: 1,
            expected: format!("at least one op line {LINE}; is this a Jepsen log? (try --format)"),
            found: excerpt(text.lines().next().unwrap_or("")),
        });
    }
    Ok(())
}

/// Where [`LOGGER`] starts in `line`. A byte scan: `str::find` builds a two-way searcher per
/// call, which costs more than the search on lines this short.
fn find_logger(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let pat = LOGGER.as_bytes();
    (0..b.len().saturating_sub(pat.len() - 1)).find(|&i| b[i] == b'j' && b[i..].starts_with(pat))
}

/// Splits the first blank-separated token off `s`.
fn token(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let len = b[start..]
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(b.len() - start);
    (&s[start..start + len], &s[start + len..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::history::{Op, Value};

    fn load(text: &str) -> Result<crate::history::History> {
        let mut b = Builder::new(Path::new("etcd.log"), Format::JepsenLog);
        parse(Path::new("etcd.log"), text, &mut b)?;
        Ok(b.finish())
    }

    #[test]
    fn reads_ops_and_leaves_timeouts_open() {
        let text = "INFO  jepsen.util - 1\t:invoke\t:write\t1\n\
                    INFO  jepsen.core - something else\n\
                    INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n\
                    INFO  jepsen.util - 1\t:ok\t:write\t1\n\
                    INFO  jepsen.util - 3\t:info\t:cas\t:timed-out\n\
                    INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n";
        let h = load(text).unwrap();
        assert_eq!(h.ops.len(), 2, "the failed read is dropped");
        assert_eq!(h.ops[1].complete, Op::NEVER);
        assert_eq!(h.values.get(h.ops[1].cas_new), &Value::Int(4));
        assert_eq!(h.stats.fail, 1);
        assert_eq!(h.line(h.ops[1].invoke), 3);
    }

    #[test]
    fn a_broken_op_line_is_an_error_with_its_line() {
        let text = "INFO  jepsen.util - 1\t:invoke\t:write\t1\nINFO  jepsen.util - x\t:ok\n";
        let msg = load(text).unwrap_err().to_string();
        assert!(msg.starts_with("etcd.log:2: expected "), "{msg}");
    }

    #[test]
    fn reads_txns_and_locks() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:txn\t[[:read :x nil] [:write :y 2]]\n\
                    INFO  jepsen.util - 0\t:ok\t:txn\t[[:read :x 1] [:write :y 2]]\n\
                    INFO  jepsen.util - 1\t:invoke\t:txn\t[[:write :x 1]]\n\
                    INFO  jepsen.util - 1\t:info\t:txn\t:timed-out\n\
                    INFO  jepsen.util - 2\t:invoke\t:acquire\tnil\n";
        let h = load(text).unwrap();
        let ok = h.txns.describe(h.ops[0].txn(), &h.values, false);
        assert_eq!(ok, "txn [r x 1, w y 2]");
        let info = h.txns.describe(h.ops[1].txn(), &h.values, true);
        assert_eq!(info, "txn [w x 1]");
        assert_eq!(h.ops[2].f, crate::history::OpKind::Acquire);
        let bad = load("INFO  jepsen.util - 0\t:ok\t:txn\t:timed-out\n").unwrap_err();
        assert!(bad.to_string().contains("expected a transaction"), "{bad}");
    }

    #[test]
    fn a_file_without_op_lines_is_an_error() {
        let msg = load("hello\nworld\n").unwrap_err().to_string();
        assert!(msg.contains("at least one op line"), "{msg}");
    }
}
