//! Liveness: did the cluster serve its clients when nothing stopped it?
//!
//! A cluster that stops answering produces a history in which nothing is wrong: every op that
//! completed is linearizable, and the rest timed out. So every run is also judged on
//! availability, from its history alone ([`judge`]):
//!
//! 1. **Windows a majority can serve.** Between faults (from the start of the run, or `grace`
//!    seconds after a fault stopped, to the next fault's start), and wherever the faults in
//!    place leave a strict majority of the voters untouched (`grace` seconds after each start
//!    and stop; see [`windows`] for which faults count and how), cut into slices of
//!    [`SLICE_S`] seconds, the cluster must serve at least `threshold` of the client ops
//!    invoked in each slice. *Served* means the cluster gave a definite answer: `ok`, or `fail`
//!    because a cas found another value or no key. A timeout, a lost connection, "no leader",
//!    "unavailable" are not served. Slices, not whole windows: an outage makes clients wait out
//!    their timeouts, so it holds few ops, and a whole window's share would hide it among the
//!    ops of the healthy seconds. A slice shorter than half a slice, or with fewer than
//!    [`MIN_OPS`] completed ops, is not judged.
//! 2. **After the last heal** the first `ok` op must come within `recovery` seconds.
//! 3. **Final reads**: every key read once more at the end must get an answer.
//!
//! A run that fails any of them is INVALID with the reason `unavailable` and the window, and
//! its timeline shades the window. The grace covers what healing legitimately costs: an
//! election (150–300 ms), a restarted node replaying its log, a leader's lease of doubt.

use serde::{Deserialize, Serialize};

use crate::history::{Outcome, RunHistory, FINAL_READ_BASE};

mod windows;

/// Fault-free windows are judged in slices of this many seconds.
pub const SLICE_S: f64 = 3.0;
/// Slices with fewer completed ops than this are not judged.
pub const MIN_OPS: usize = 5;

/// What the availability check is asked to require.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivenessRule {
    /// The share of ops a fault-free window must serve (0 turns the window check off).
    pub threshold: f64,
    /// Seconds after a fault stops before its window is judged.
    pub grace_s: f64,
    /// Seconds after the last heal within which the first ok op must come.
    pub recovery_s: f64,
    /// The cluster's voters, for the stretches where only a minority is faulted
    /// ([`windows`]); 0 (unknown, and in results from before) judges only the stretches with
    /// no fault in place.
    #[serde(default)]
    pub nodes: usize,
}

impl Default for LivenessRule {
    fn default() -> LivenessRule {
        LivenessRule {
            threshold: 0.25,
            grace_s: 3.0,
            recovery_s: 15.0,
            nodes: 0,
        }
    }
}

/// One judged fault-free window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub ops: usize,
    pub served: usize,
    /// The nodes the faults in place took out meanwhile, a minority (absent: no fault in
    /// place; empty: faults that take out nobody, such as a leadership transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faulted: Option<Vec<u64>>,
}

impl Window {
    pub fn share(&self) -> f64 {
        if self.ops == 0 {
            1.0
        } else {
            self.served as f64 / self.ops as f64
        }
    }
}

/// The check's result, stored in `results.json` as `availability`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub available: bool,
    /// One sentence per failed check; empty when available.
    pub reasons: Vec<String>,
    /// Where it failed, in seconds since the start: shaded on the timeline.
    pub unavailable: Vec<(f64, f64)>,
    /// Every window judged.
    pub windows: Vec<Window>,
    pub final_reads: usize,
    pub final_reads_answered: usize,
    /// Seconds from the last heal to the first ok op after it (`None`: no fault, or no ok op).
    pub first_ok_after_heal_s: Option<f64>,
    pub rule: LivenessRule,
}

impl Availability {
    /// One line for the summary.
    pub fn describe(&self) -> String {
        if !self.available {
            return format!("UNAVAILABLE: {}", self.reasons.join("; "));
        }
        let worst = self
            .windows
            .iter()
            .map(Window::share)
            .fold(1.0f64, f64::min);
        let minority = self.windows.iter().filter(|w| w.faulted.is_some()).count();
        let slices = match minority {
            0 => format!(
                "{} fault-free slice(s) of {SLICE_S} s judged",
                self.windows.len()
            ),
            m => format!(
                "{} slice(s) of {SLICE_S} s judged ({} fault-free, {m} with a minority faulted)",
                self.windows.len(),
                self.windows.len() - m
            ),
        };
        let mut line = format!(
            "ok: {slices}, the worst served {:.0}%; final reads {}/{} answered",
            worst * 100.0,
            self.final_reads_answered,
            self.final_reads
        );
        if let Some(s) = self.first_ok_after_heal_s {
            line.push_str(&format!("; first ok op {s:.1} s after the last heal"));
        }
        line
    }
}

/// Whether a completed op got a definite answer from the cluster.
fn served(op: &crate::history::Op) -> bool {
    match op.outcome {
        Outcome::Ok => true,
        Outcome::Fail => op.error.as_deref().is_some_and(|e| {
            e.starts_with("cas-mismatch") || e.starts_with("cas on a missing key")
        }),
        _ => false,
    }
}

/// Judges `run` by `rule` (see the module docs).
pub fn judge(run: &RunHistory, rule: LivenessRule) -> Availability {
    let ns = |s: f64| (s * 1e9) as u64;
    let secs = |ns: u64| ns as f64 / 1e9;
    let clients: Vec<&crate::history::Op> = run
        .ops
        .iter()
        .filter(|o| o.process < FINAL_READ_BASE)
        .collect();
    let finals: Vec<&crate::history::Op> = run
        .ops
        .iter()
        .filter(|o| o.process >= FINAL_READ_BASE)
        .collect();
    // The last client op's end: the workload's windows close there, before the final reads.
    let workload_end = clients
        .iter()
        .map(|o| o.complete_ns.unwrap_or(o.invoke_ns))
        .max()
        .unwrap_or(0);
    let mut a = Availability {
        available: true,
        reasons: Vec::new(),
        unavailable: Vec::new(),
        windows: Vec::new(),
        final_reads: finals.len(),
        final_reads_answered: finals.iter().filter(|o| o.outcome == Outcome::Ok).count(),
        first_ok_after_heal_s: None,
        rule,
    };
    let windows = windows::judged(run, workload_end, ns(rule.grace_s), rule.nodes);
    judge_slices(&clients, windows, rule, &mut a);
    after_heal(run, rule, &mut a);
    if a.final_reads_answered < a.final_reads {
        let first = finals.iter().map(|o| o.invoke_ns).min().unwrap_or(0);
        a.reasons.push(format!(
            "{} of {} final reads got no answer",
            a.final_reads - a.final_reads_answered,
            a.final_reads
        ));
        a.unavailable.push((secs(first), secs(run.end_ns)));
    }
    a.available = a.reasons.is_empty();
    a
}

/// The fault-free windows, cut into slices: each judged slice goes to `a.windows`, and each
/// run of consecutive slices below the threshold becomes one reason and one unavailable span.
fn judge_slices(
    clients: &[&crate::history::Op],
    windows: Vec<windows::Stretch>,
    rule: LivenessRule,
    a: &mut Availability,
) {
    let secs = |ns: u64| ns as f64 / 1e9;
    if rule.threshold <= 0.0 {
        return;
    }
    let mut failed: Vec<Window> = Vec::new();
    for (start, end, faulted) in windows.into_iter().flat_map(|(a, b, faulted)| {
        slices(a, b, (SLICE_S * 1e9) as u64)
            .into_iter()
            .map(move |(s, e)| (s, e, faulted.clone()))
    }) {
        let in_window: Vec<&&crate::history::Op> = clients
            .iter()
            .filter(|o| o.invoke_ns >= start && o.invoke_ns < end && o.complete_ns.is_some())
            .collect();
        if in_window.len() < MIN_OPS {
            continue;
        }
        let w = Window {
            start_s: secs(start),
            end_s: secs(end),
            ops: in_window.len(),
            served: in_window.iter().filter(|o| served(o)).count(),
            faulted,
        };
        if w.share() < rule.threshold {
            match failed.last_mut() {
                // Consecutive slices below the threshold are one outage.
                Some(last)
                    if (last.end_s - w.start_s).abs() < 1e-9 && last.faulted == w.faulted =>
                {
                    last.end_s = w.end_s;
                    last.ops += w.ops;
                    last.served += w.served;
                }
                _ => failed.push(w.clone()),
            }
        }
        a.windows.push(w);
    }
    for w in failed {
        let faults = match w.faulted.as_deref() {
            None => "with no fault in place".to_string(),
            Some([]) => "with faults in place that take out no node".to_string(),
            Some(nodes) => format!(
                "with only {} faulted (a majority up and connected)",
                nodes
                    .iter()
                    .map(|n| format!("n{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        a.reasons.push(format!(
            "between {:.1} s and {:.1} s, {faults}, the cluster served {} of {} ops ({:.0}%, below {:.0}%)",
            w.start_s,
            w.end_s,
            w.served,
            w.ops,
            w.share() * 100.0,
            rule.threshold * 100.0
        ));
        a.unavailable.push((w.start_s, w.end_s));
    }
}

/// The last heal: the first ok op after it must come within the recovery time.
fn after_heal(run: &RunHistory, rule: LivenessRule, a: &mut Availability) {
    let Some(heal) = run.faults.iter().filter_map(|f| f.stop_ns).max() else {
        return;
    };
    let first_ok = run
        .ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| o.complete_ns)
        .filter(|&c| c >= heal)
        .min();
    let secs = |ns: u64| ns as f64 / 1e9;
    match first_ok {
        Some(c) => {
            let waited = secs(c - heal);
            a.first_ok_after_heal_s = Some(waited);
            if waited > rule.recovery_s {
                a.reasons.push(format!(
                    "the first ok op after the last heal ({:.1} s) came {waited:.1} s later, beyond the recovery timeout of {:.0} s",
                    secs(heal),
                    rule.recovery_s
                ));
                a.unavailable.push((secs(heal), secs(c)));
            }
        }
        None => {
            a.reasons.push(format!(
                "no op succeeded after the last heal ({:.1} s)",
                secs(heal)
            ));
            a.unavailable.push((secs(heal), secs(run.end_ns)));
        }
    }
}

/// `[a, b)` cut into slices of `slice`; a last piece shorter than half a slice joins the one
/// before it (or, alone, is dropped).
fn slices(a: u64, b: u64, slice: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut from = a;
    while from < b {
        let to = (from + slice).min(b);
        if b - to < slice / 2 {
            if b - from >= slice / 2 {
                out.push((from, b));
            }
            break;
        }
        out.push((from, to));
        from = to;
    }
    out
}

#[cfg(test)]
mod tests;
