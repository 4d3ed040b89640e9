//! Verdicts, counterexamples, and how they look in a terminal and in JSON.
//!
//! A [`CheckReport`] has one [`KeyReport`] per key. The overall verdict is `invalid` if any key
//! is, else `unknown` if any key is, else `valid`. An invalid key carries a [`Counterexample`]:
//! the op that could not be linearized, the longest linearizable prefix the search found, the
//! states the model could be in after it, and the ops concurrent with the failed one. The JSON
//! form (serde) is what `results.json` and the HTML report read; [`CheckReport::render`] is
//! the terminal form, kept within 80 columns (but for the file's path on the first line).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::format::Format;
use crate::history::{HistoryStats, OpKind};
use crate::model::ModelKind;
use crate::nil_read::NilRead;

/// Whether what clients saw could come from one atomic copy of the data.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Linearizable.
    Valid,
    /// Not linearizable: there is a counterexample.
    Invalid,
    /// Not decided within the time limit or memory budget.
    Unknown,
}

impl Verdict {
    /// The exit code Jepsen uses for it: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One op, as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpRef {
    pub process: u64,
    pub f: OpKind,
    /// `ok` or `info`.
    pub outcome: crate::history::Outcome,
    /// The op's value as in the history: the value read (null for an info read), the value
    /// written or appended, or `[expected, new]` for a cas.
    pub value: serde_json::Value,
    /// The op as the model shows it, e.g. `cas 1->4`.
    pub op: String,
    /// History index (0-based position among the file's events) of the invoke.
    pub invoke: u32,
    /// History index of the completion; `null` for an op that never returned (info).
    pub complete: Option<u32>,
    /// 1-based line of the invoke in the file.
    pub invoke_line: u32,
    /// 1-based line of the completion.
    pub complete_line: Option<u32>,
}

/// Why a key is not linearizable, in terms a person can check against the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// The op that could not be linearized.
    pub op: OpRef,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpRef>,
    /// The states the model could be in after such prefixes, when `op` had to take effect.
    pub states: Vec<String>,
    /// Ops of the same key whose interval overlaps `op`'s.
    pub concurrent: Vec<OpRef>,
    /// One or two sentences.
    pub explanation: String,
}

/// The verdict on one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyReport {
    pub verdict: Verdict,
    /// Ops on this key that reached the model (fails excluded).
    pub ops: usize,
    /// Info ops proven irrelevant and dropped before the search.
    pub dropped_info: usize,
    /// Configurations the search entered.
    pub configurations: usize,
    /// Bytes the search's memo held at the end (its peak).
    pub memo_bytes: usize,
    /// Why the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// How many keys got each verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCounts {
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
}

impl KeyCounts {
    /// The verdict on the whole history: invalid if any key is, else unknown if any key is,
    /// else valid.
    pub fn verdict(&self) -> Verdict {
        if self.invalid > 0 {
            Verdict::Invalid
        } else if self.unknown > 0 {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }
}

/// The result of checking a history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    pub verdict: Verdict,
    pub file: PathBuf,
    pub format: Format,
    pub model: ModelKind,
    /// The initial value every key started from (`free` for a mutex).
    pub initial: String,
    /// What an ok read of nil meant: `any` (Knossos: it constrains nothing) or `absent`.
    pub nil_read: NilRead,
    /// Ok reads of nil left out of the search because, with `nil_read: any`, they match every
    /// state (0 with `absent`).
    pub unconstrained_reads: usize,
    /// Wall-clock time of the check (not the parse), in seconds.
    pub elapsed_secs: f64,
    pub history: HistoryStats,
    pub key_counts: KeyCounts,
    /// Per key, by name (`""` is the default key of formats without keys).
    pub keys: BTreeMap<String, KeyReport>,
}

/// How many prefix ops the terminal shows before the failed op.
const PREFIX_SHOWN: usize = 6;
/// How many concurrent ops the terminal shows.
const CONCURRENT_SHOWN: usize = 8;
/// How many invalid keys the terminal details (the JSON has all).
const INVALID_SHOWN: usize = 3;

/// A key as the text shows it: quoted, or "(the only key)" for the default key.
fn key_label(k: &str) -> String {
    if k.is_empty() {
        "(the only key)".to_string()
    } else {
        format!("{k:?}")
    }
}

fn op_line(o: &OpRef) -> String {
    let end = match (o.complete, o.complete_line) {
        (Some(_), Some(l)) => format!("{l}"),
        _ => "never".to_string(),
    };
    let info = if o.outcome == crate::history::Outcome::Info {
        " info"
    } else {
        ""
    };
    let mut op = o.op.clone();
    if op.chars().count() > 34 {
        op = op.chars().take(33).collect::<String>() + "…";
    }
    format!(
        "{op:<34} p{:<5} lines {}-{end}{info}",
        o.process, o.invoke_line
    )
}

impl CheckReport {
    /// The terminal form: a summary, then a readable counterexample per invalid key.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_summary(&mut s);
        self.render_unknown_reasons(&mut s);
        for (name, k) in self
            .keys
            .iter()
            .filter(|(_, k)| k.counterexample.is_some())
            .take(INVALID_SHOWN)
        {
            render_invalid_key(&mut s, name, k);
        }
        if self.key_counts.invalid > INVALID_SHOWN {
            let _ = writeln!(
                s,
                "\n({} more invalid keys: see --json)",
                self.key_counts.invalid - INVALID_SHOWN
            );
        }
        let verdict = match self.verdict {
            Verdict::Valid => "VALID: linearizable",
            Verdict::Invalid => "INVALID: not linearizable",
            Verdict::Unknown => "UNKNOWN: not decided (see above)",
        };
        let _ = writeln!(s, "\n{verdict}");
        s
    }

    /// The file, how it was read and checked, what it held and the keys' verdicts.
    fn render_summary(&self, s: &mut String) {
        let h = &self.history;
        let _ = writeln!(s, "{}", self.file.display());
        let _ = writeln!(
            s,
            "  format {}, model {}, initial value {}",
            self.format, self.model, self.initial
        );
        let nil = match self.nil_read {
            NilRead::Any => format!(
                "they match any state, as in Knossos (left out of the search: {})",
                self.unconstrained_reads
            ),
            NilRead::Absent => "they say the key has no value".to_string(),
        };
        if self.model != ModelKind::Mutex {
            // A lock has no reads.
            let _ = writeln!(s, "  nil reads (--nil-read {}): {nil}", self.nil_read);
        }
        let _ = writeln!(
            s,
            "  ops: {} ok, {} info, {} unfinished, {} fail (dropped), {} ignored",
            h.ok, h.info, h.unfinished, h.fail, h.ignored
        );
        let c = &self.key_counts;
        let _ = writeln!(
            s,
            "  keys: {} valid, {} invalid, {} unknown   ({:.1} ms)",
            c.valid,
            c.invalid,
            c.unknown,
            self.elapsed_secs * 1e3
        );
    }

    /// Why keys are unknown: each reason once, with how many keys it stopped.
    fn render_unknown_reasons(&self, s: &mut String) {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for k in self.keys.values() {
            if let Some(r) = &k.reason {
                *reasons.entry(r.as_str()).or_default() += 1;
            }
        }
        for (r, n) in reasons {
            let line = format!("unknown ({n} key{}): {r}", if n == 1 { "" } else { "s" });
            for (i, part) in wrap(&line, 76).iter().enumerate() {
                let _ = writeln!(s, "{}{part}", if i == 0 { "  " } else { "    " });
            }
        }
    }
}

/// One invalid key's counterexample: the end of the linearized prefix, the states it leaves,
/// the op that could not follow, the ops concurrent with it, and the explanation.
fn render_invalid_key(s: &mut String, name: &str, k: &KeyReport) {
    let Some(cx) = &k.counterexample else {
        return;
    };
    let _ = writeln!(
        s,
        "\nkey {}: not linearizable ({} ops)",
        key_label(name),
        k.ops
    );
    let skipped = cx.prefix.len().saturating_sub(PREFIX_SHOWN);
    let _ = writeln!(
        s,
        "  linearized prefix ({} ops{}):",
        cx.prefix.len(),
        if skipped > 0 {
            format!(", last {PREFIX_SHOWN} shown")
        } else {
            String::new()
        }
    );
    for o in &cx.prefix[skipped..] {
        let _ = writeln!(s, "    {}", op_line(o));
    }
    let _ = writeln!(s, "  then the state could be: {}", cx.states.join(", "));
    let _ = writeln!(s, "  and this op could not be linearized:");
    let _ = writeln!(s, "  > {}", op_line(&cx.op));
    if !cx.concurrent.is_empty() {
        let _ = writeln!(s, "  concurrent with it:");
        for o in cx.concurrent.iter().take(CONCURRENT_SHOWN) {
            let _ = writeln!(s, "    {}", op_line(o));
        }
        if cx.concurrent.len() > CONCURRENT_SHOWN {
            let _ = writeln!(
                s,
                "    … and {} more",
                cx.concurrent.len() - CONCURRENT_SHOWN
            );
        }
    }
    for line in wrap(&cx.explanation, 76) {
        let _ = writeln!(s, "  {line}");
    }
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
