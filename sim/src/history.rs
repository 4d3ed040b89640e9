//! The history of what the simulated clients asked and were told, as riptide JSONL (the format
//! `riptide test` writes, see `docs/history-format.md`), checked with `riptide-checker`.
//!
//! Line order is real-time order: an invoke is recorded when a client starts an operation,
//! a completion when its answer reaches the client (or when it gives up). Keys and values are
//! the simulation's own short ASCII names (`k0`, `v17`, `a3.`), so no JSON escaping is needed.

use std::fmt::Write as _;
use std::path::Path;

use riptide_checker::{check, parse_history, CheckOptions, Format, ModelKind, Verdict};
use riptide_node::protocol::{ClientOp, WriteOp};

/// How an operation ended, as a real client maps the node's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Took effect; for a read, the value read.
    Ok(Option<String>),
    /// Definitely did not take effect.
    Fail,
    /// May or may not take effect.
    Info,
}

#[derive(Debug, Default)]
pub struct History {
    text: String,
    pub invokes: usize,
    pub oks: usize,
    pub fails: usize,
    pub infos: usize,
}

fn json_str(s: &str) -> String {
    debug_assert!(s
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    format!("\"{s}\"")
}

/// The history's fields of `op`: its name, key and value (for a read's completion, the value
/// read). Status queries never reach a history.
fn fields(op: &ClientOp, read_value: Option<&Option<String>>) -> String {
    let (f, key, value) = match op {
        ClientOp::Get { key } => {
            let value = match read_value {
                Some(Some(v)) => json_str(v),
                _ => "null".into(),
            };
            ("read", key, value)
        }
        ClientOp::Write(WriteOp::Put { key, value }) => ("write", key, json_str(value)),
        ClientOp::Write(WriteOp::Cas { key, expected, new }) => (
            "cas",
            key,
            format!("[{},{}]", json_str(expected), json_str(new)),
        ),
        ClientOp::Write(WriteOp::Append { key, suffix }) => ("append", key, json_str(suffix)),
        ClientOp::Status | ClientOp::Digest | ClientOp::Admin(_) => {
            unreachable!("status, digest and admin requests are not client operations")
        }
    };
    format!(r#""f":"{f}","key":{},"value":{value}"#, json_str(key))
}

impl History {
    pub fn invoke(&mut self, process: u64, op: &ClientOp) {
        self.invokes += 1;
        let fields = fields(op, None);
        let _ = writeln!(
            self.text,
            r#"{{"process":{process},"type":"invoke",{fields}}}"#
        );
    }

    pub fn complete(&mut self, process: u64, op: &ClientOp, completion: &Completion) {
        let (kind, value) = match completion {
            Completion::Ok(v) => {
                self.oks += 1;
                ("ok", Some(v))
            }
            Completion::Fail => {
                self.fails += 1;
                ("fail", None)
            }
            Completion::Info => {
                self.infos += 1;
                ("info", None)
            }
        };
        let fields = fields(op, value);
        let _ = writeln!(
            self.text,
            r#"{{"process":{process},"type":"{kind}",{fields}}}"#
        );
    }

    /// The JSONL text, for `riptide check` or a person.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Checks linearizability with the kv model (put, cas, append, get on string values).
    /// Returns the checker's report when the history is not linearizable, or not decided.
    pub fn check(&self) -> Result<(), String> {
        let path = Path::new("simulation.jsonl");
        let history = parse_history(path, &self.text, Format::Jsonl)
            .map_err(|e| format!("the simulation wrote a history the checker rejects: {e}"))?;
        let opts = CheckOptions {
            threads: Some(1),
            ..CheckOptions::default()
        };
        let report = check(&history, ModelKind::Kv, &opts).map_err(|e| e.to_string())?;
        match report.verdict {
            Verdict::Valid => Ok(()),
            Verdict::Invalid | Verdict::Unknown => Err(report.render()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(v: &str) -> ClientOp {
        ClientOp::Write(WriteOp::Put {
            key: "k0".into(),
            value: v.into(),
        })
    }

    fn read() -> ClientOp {
        ClientOp::Get { key: "k0".into() }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught() {
        let mut h = History::default();
        h.invoke(0, &write("v1"));
        h.complete(0, &write("v1"), &Completion::Ok(None));
        h.invoke(1, &read());
        h.complete(1, &read(), &Completion::Ok(Some("v1".into())));
        assert_eq!(h.check(), Ok(()));
        h.invoke(1, &read());
        h.complete(1, &read(), &Completion::Ok(Some("v2".into())));
        assert!(h.check().unwrap_err().contains("not linearizable"));
    }

    #[test]
    fn an_info_write_may_take_effect_later() {
        let mut h = History::default();
        h.invoke(0, &write("v1"));
        h.complete(0, &write("v1"), &Completion::Info);
        h.invoke(1, &read());
        h.complete(1, &read(), &Completion::Ok(None));
        h.invoke(1, &read());
        h.complete(1, &read(), &Completion::Ok(Some("v1".into())));
        assert_eq!(h.check(), Ok(()));
    }
}
