//! The checker always finishes: a history built to blow up the search ends `unknown` at the time
//! limit or the memory budget, never hangs or aborts, and the other keys keep their verdicts.
//!
//! `tests/data/blowup.jsonl`: 24 timed-out writes and 24 reads, all concurrent, then a read of a
//! value nobody wrote. Every subset of the reads can be linearized, each after its own write, so
//! the search must visit about 2^24 configurations before it can answer "invalid".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use riptide_checker::{check, parse_history, CheckOptions, Format, ModelKind, Verdict};

fn blowup_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/blowup.jsonl");
    std::fs::read_to_string(path).unwrap()
}

fn check_text(text: &str, opts: &CheckOptions) -> riptide_checker::CheckReport {
    let h = parse_history(&PathBuf::from("blowup.jsonl"), text, Format::Jsonl).unwrap();
    check(&h, ModelKind::CasRegister, opts).unwrap()
}

#[test]
fn the_blowup_ends_unknown_at_the_time_limit() {
    let opts = CheckOptions {
        time_limit: Some(Duration::from_millis(300)),
        ..CheckOptions::default()
    };
    let start = Instant::now();
    let r = check_text(&blowup_text(), &opts);
    let took = start.elapsed();
    assert_eq!(r.verdict, Verdict::Unknown);
    let reason = r.keys[""].reason.as_deref().unwrap();
    assert!(reason.contains("time limit of 0.3 s"), "{reason}");
    assert!(
        took < Duration::from_secs(3),
        "stopped {took:?} after a 0.3 s limit"
    );
}

#[test]
fn the_blowup_ends_unknown_at_the_memory_budget() {
    let opts = CheckOptions {
        memory_budget_bytes: 16 << 20,
        ..CheckOptions::default()
    };
    let r = check_text(&blowup_text(), &opts);
    assert_eq!(r.verdict, Verdict::Unknown);
    let reason = r.keys[""].reason.as_deref().unwrap();
    assert!(reason.contains("memory budget of 16 MiB"), "{reason}");
}

/// The blowup on the default key, plus a small key "k" with the given read result.
fn with_small_key(read: i64) -> String {
    let mut text = blowup_text();
    for (p, ty, f, v) in [
        (300, "invoke", "write", "1"),
        (300, "ok", "write", "1"),
        (301, "invoke", "read", "null"),
        (301, "ok", "read", &read.to_string()[..]),
    ] {
        text.push_str(&format!(
            "{{\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"key\":\"k\",\"value\":{v}}}\n"
        ));
    }
    text
}

#[test]
fn a_key_that_finishes_keeps_its_verdict_when_another_times_out() {
    let opts = CheckOptions {
        time_limit: Some(Duration::from_millis(300)),
        threads: Some(2),
        ..CheckOptions::default()
    };
    let r = check_text(&with_small_key(1), &opts);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.keys["k"].verdict, Verdict::Valid);
    assert_eq!(r.keys[""].verdict, Verdict::Unknown);
}

#[test]
fn an_invalid_key_decides_the_history_and_stops_the_others() {
    let opts = CheckOptions {
        threads: Some(2),
        ..CheckOptions::default()
    };
    let start = Instant::now();
    let r = check_text(&with_small_key(2), &opts);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys["k"].verdict, Verdict::Invalid);
    assert_eq!(r.keys[""].verdict, Verdict::Unknown);
    let reason = r.keys[""].reason.as_deref().unwrap();
    assert!(reason.contains("another key is invalid"), "{reason}");
}

/// A long single-register history: 30,000 writes, each overlapped by a read that sees it.
fn long_register_history(ops: usize) -> String {
    let mut text = String::new();
    for i in 1..=ops / 2 {
        let line = |p: usize, ty: &str, f: &str, v: String| {
            format!("{{\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"value\":{v}}}\n")
        };
        text += &line(0, "invoke", "write", i.to_string());
        text += &line(1, "invoke", "read", "null".into());
        text += &line(0, "ok", "write", i.to_string());
        text += &line(1, "ok", "read", i.to_string());
    }
    text
}

#[test]
fn a_long_single_key_history_fits_a_small_memory_budget() {
    // Full bitsets would take 30,000 / 8 bytes per configuration, over 100 MiB for the
    // configurations of one pass; the memo stores only the frontier window.
    let opts = CheckOptions {
        memory_budget_bytes: 32 << 20,
        ..CheckOptions::default()
    };
    let r = check_text(&long_register_history(30_000), &opts);
    assert_eq!(r.verdict, Verdict::Valid, "{:?}", r.keys[""].reason);
    assert!(r.keys[""].configurations >= 30_000);
}

/// The parsed history counts against the budget and the time spent reading it against the
/// limit: a budget smaller than the history itself, or a limit already spent when the check
/// starts, leaves every key unknown (here an easy, valid history).
#[test]
fn the_history_itself_counts_against_the_budget_and_the_limit() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"a\",\"value\":1}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"a\",\"value\":1}\n";
    let h = parse_history(&PathBuf::from("h.jsonl"), text, Format::Jsonl).unwrap();
    assert!(h.heap_bytes() > 32, "{}", h.heap_bytes());
    let valid = check(&h, ModelKind::CasRegister, &CheckOptions::default()).unwrap();
    assert_eq!(valid.verdict, Verdict::Valid);
    let tiny = CheckOptions {
        memory_budget_bytes: 16,
        ..CheckOptions::default()
    };
    let r = check(&h, ModelKind::CasRegister, &tiny).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.keys["a"]
        .reason
        .as_deref()
        .unwrap()
        .contains("memory budget"));
    let spent = CheckOptions {
        time_limit: Some(Duration::from_millis(10)),
        started: Some(Instant::now() - Duration::from_millis(20)),
        ..CheckOptions::default()
    };
    let r = check(&h, ModelKind::CasRegister, &spent).unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.keys["a"]
        .reason
        .as_deref()
        .unwrap()
        .contains("time limit"));
}
