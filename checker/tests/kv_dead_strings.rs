//! The kv model's dead strings (one memo state for every string no op can observe any more) and
//! its greedy appends (an ok append in a dead state with no put or cas able to run before it):
//! random small append histories against a brute force, and hand-written ones, valid and
//! invalid, that take those paths.

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_checker::history::{History, Op, Outcome};
use riptide_checker::model::kv::Kv;
use riptide_checker::model::{Context, Model};
use riptide_checker::{check, parse_history, CheckOptions, Format, ModelKind, Verdict};

fn load(text: &str) -> History {
    parse_history(Path::new("generated.jsonl"), text, Format::Jsonl).unwrap()
}

fn opts() -> CheckOptions {
    CheckOptions {
        all_keys: true,
        threads: Some(1),
        ..CheckOptions::default()
    }
}

fn verdict(h: &History) -> Verdict {
    check(h, ModelKind::Kv, &opts()).unwrap().verdict
}

/// Every order of the ok ops and of every subset of the info ops that respects real time, run
/// on the model's step alone (no memo, no pruning, no canon, no greedy steps).
fn brute(model: &mut Kv<'_>, state: u32, ops: &[Op], used: &mut Vec<bool>) -> bool {
    if !ops
        .iter()
        .zip(used.iter())
        .any(|(o, u)| !u && o.outcome == Outcome::Ok)
    {
        return true;
    }
    for i in 0..ops.len() {
        let blocked = (0..ops.len())
            .any(|j| !used[j] && ops[j].outcome == Outcome::Ok && ops[j].complete < ops[i].invoke);
        if used[i] || blocked {
            continue;
        }
        if let Some(next) = model.step(state, &ops[i]) {
            used[i] = true;
            let found = brute(model, next, ops, used);
            used[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn brute_force(h: &History) -> Verdict {
    let initial = h.default_initial.clone();
    let ctx = Context::new(&h.values, &initial);
    let valid = h.partition().iter().all(|ops| {
        let mut m = Kv::new(ctx, ops);
        let s = m.init();
        brute(&mut m, s, ops, &mut vec![false; ops.len()])
    });
    if valid {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

/// A client's op in flight: f, value, whether it took effect, what it read (None: nil).
type Pending = (&'static str, String, bool, Option<String>);

/// A random execution of one key with many concurrent appends of one letter each, reads, and a
/// few puts, as riptide JSONL; each op takes effect between its invoke and its completion (an
/// info op maybe later, maybe never). With `corrupt`, one read reports a wrong string (a letter
/// more, or its last two letters swapped).
fn simulate(seed: u64, ops: usize, procs: usize, corrupt: bool) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // None: nil, the value before any write (riptide JSONL's initial value).
    let mut state: Option<String> = None;
    // Per process: (f, value, applied, read result).
    let mut pending: Vec<Option<Pending>> = vec![None; procs];
    let mut pid: Vec<usize> = (0..procs).collect();
    let mut next_pid = procs;
    let (mut invoked, mut letter, mut corrupted) = (0, 0u8, !corrupt);
    let mut out = String::new();
    let line = |out: &mut String, p: usize, ty: &str, f: &str, v: &str| {
        let _ = writeln!(
            out,
            r#"{{"process":{p},"type":"{ty}","f":"{f}","key":"k","value":{v}}}"#
        );
    };
    loop {
        let idle: Vec<usize> = (0..procs).filter(|&i| pending[i].is_none()).collect();
        if invoked == ops && idle.len() == procs {
            return out;
        }
        if invoked < ops && !idle.is_empty() && rng.gen_bool(0.45) {
            let i = idle[rng.gen_range(0..idle.len())];
            let (f, v) = match rng.gen_range(0..10) {
                0..=5 => {
                    letter += 1;
                    ("append", ((b'a' + letter % 26) as char).to_string())
                }
                6..=8 => ("read", String::new()),
                _ => ("write", ["", "a", "p"][rng.gen_range(0..3)].to_string()),
            };
            let shown = if f == "read" {
                "null".into()
            } else {
                format!("{v:?}")
            };
            line(&mut out, pid[i], "invoke", f, &shown);
            pending[i] = Some((f, v, false, None));
            invoked += 1;
            continue;
        }
        let busy: Vec<usize> = (0..procs).filter(|&i| pending[i].is_some()).collect();
        if busy.is_empty() {
            continue;
        }
        let i = busy[rng.gen_range(0..busy.len())];
        let (f, v, applied, read) = pending[i].as_mut().unwrap();
        if !*applied {
            *applied = true;
            match *f {
                "append" => state.get_or_insert_with(String::new).push_str(v),
                "write" => state = Some(v.clone()),
                _ => *read = state.clone(),
            }
            continue;
        }
        if *f != "read" && rng.gen_range(0..100) < 8 {
            line(&mut out, pid[i], "info", f, "null");
            pid[i] = next_pid;
            next_pid += 1;
        } else if *f == "read" {
            let mut r = read.clone();
            if !corrupted && rng.gen_bool(0.3) {
                let t = r.get_or_insert_with(String::new);
                if t.len() >= 2 && rng.gen_bool(0.5) {
                    let n = t.len();
                    *t = format!("{}{}{}", &t[..n - 2], &t[n - 1..], &t[n - 2..n - 1]);
                } else {
                    t.push('z');
                }
                corrupted = true;
            }
            let shown = r.map_or("null".to_string(), |t| format!("{t:?}"));
            line(&mut out, pid[i], "ok", f, &shown);
        } else {
            line(&mut out, pid[i], "ok", f, &format!("{v:?}"));
        }
        pending[i] = None;
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 4000,
        rng_seed: RngSeed::Fixed(0x00de_ad57),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn append_histories_agree_with_brute_force(
        seed in any::<u64>(),
        ops in 2usize..10,
        procs in 2usize..7,
        corrupt in any::<bool>(),
    ) {
        let text = simulate(seed, ops, procs, corrupt);
        let h = load(&text);
        let want = brute_force(&h);
        prop_assert_eq!(verdict(&h), want, "{}", text);
        if !corrupt {
            prop_assert_eq!(want, Verdict::Valid, "a recorded execution: {}", text);
        }
    }
}

/// The generated histories must include both verdicts, reads of long strings and puts, or the
/// brute force would judge little.
#[test]
fn the_generated_append_histories_cover_both_verdicts() {
    let (mut valid, mut invalid, mut with_put) = (0, 0, 0);
    for seed in 0..300u64 {
        let text = simulate(seed, 8, 4, true);
        match brute_force(&load(&text)) {
            Verdict::Valid => valid += 1,
            _ => invalid += 1,
        }
        with_put += usize::from(text.contains(r#""f":"write""#));
    }
    assert!(
        valid >= 50 && invalid >= 50,
        "valid {valid}, invalid {invalid}"
    );
    assert!(with_put >= 100, "{with_put} histories with a put");
}

/// JSONL for one key from `(process, type, f, value)` rows.
fn history(rows: &[(u32, &str, &str, &str)]) -> History {
    let mut text = String::new();
    for (p, ty, f, v) in rows {
        let _ = writeln!(
            text,
            r#"{{"process":{p},"type":"{ty}","f":"{f}","key":"k","value":{v}}}"#
        );
    }
    load(&text)
}

/// `n` appends (`a`, `b`, ...) all pending together after a read of nil, then `tail`.
fn many_appends_then(n: u32, tail: &[(u32, &str, &str, &str)]) -> History {
    let letters: Vec<String> = (0..n)
        .map(|i| format!("\"{}\"", (b'a' + i as u8) as char))
        .collect();
    let mut rows = vec![(99, "invoke", "read", "null"), (99, "ok", "read", "null")];
    rows.extend((0..n).map(|i| (i, "invoke", "append", letters[i as usize].as_str())));
    rows.extend((0..n).map(|i| (i, "ok", "append", letters[i as usize].as_str())));
    rows.extend_from_slice(tail);
    history(&rows)
}

fn report(h: &History) -> (Verdict, usize) {
    let r = check(h, ModelKind::Kv, &opts()).unwrap();
    (r.verdict, r.keys.values().map(|k| k.configurations).sum())
}

/// Twelve concurrent appends that no read observes: 12! orders, each a different string, all
/// dead. One memo state and greedy steps make that a few dozen configurations.
#[test]
fn unobserved_concurrent_appends_are_one_dead_state() {
    let (v, configurations) = report(&many_appends_then(12, &[]));
    assert_eq!(v, Verdict::Valid);
    assert!(configurations < 100, "{configurations} configurations");
}

/// The same, then a put invoked after every append completed and a read of it: the appends are
/// greedy (no put can run before them), the put moves the state out of the dead one.
#[test]
fn greedy_appends_then_a_put_valid_and_invalid() {
    let put = |read: &'static str| {
        let read: &str = read;
        vec![
            (50, "invoke", "write", "\"z\""),
            (50, "ok", "write", "\"z\""),
            (51, "invoke", "read", "null"),
            (51, "ok", "read", read),
        ]
    };
    let (v, configurations) = report(&many_appends_then(12, &put("\"z\"")));
    assert_eq!(v, Verdict::Valid);
    assert!(configurations < 100, "{configurations} configurations");
    let (v, _) = report(&many_appends_then(12, &put("\"zq\"")));
    assert_eq!(v, Verdict::Invalid, "no op writes \"zq\"");
    // A read that observes the appends' order keeps the strings live: "ba" is a fine order...
    let (v, _) = report(&many_appends_then(
        2,
        &[(52, "invoke", "read", "null"), (52, "ok", "read", "\"ba\"")],
    ));
    assert_eq!(v, Verdict::Valid);
    // ...and "aa" none.
    let (v, _) = report(&many_appends_then(
        2,
        &[(52, "invoke", "read", "null"), (52, "ok", "read", "\"aa\"")],
    ));
    assert_eq!(v, Verdict::Invalid);
}

/// A dead state ("xy": no read starts with it), then an append concurrent with a put: the
/// append is not greedy, because the put may run first, and must: `put "", append "a",
/// read "a"` is the only order. Taking the append greedily would call this invalid.
#[test]
fn an_append_concurrent_with_a_put_is_not_greedy() {
    let rows = |last: &'static str| {
        let last: &str = last;
        history(&[
            (0, "invoke", "write", "\"x\""),
            (0, "ok", "write", "\"x\""),
            (0, "invoke", "read", "null"),
            (0, "ok", "read", "\"x\""),
            (0, "invoke", "append", "\"y\""),
            (0, "ok", "append", "\"y\""),
            (1, "invoke", "append", "\"a\""),
            (2, "invoke", "write", "\"\""),
            (2, "ok", "write", "\"\""),
            (1, "ok", "append", "\"a\""),
            (3, "invoke", "read", "null"),
            (3, "ok", "read", last),
        ])
    };
    assert_eq!(brute_force(&rows("\"a\"")), Verdict::Valid);
    assert_eq!(verdict(&rows("\"a\"")), Verdict::Valid);
    assert_eq!(brute_force(&rows("\"xya\"")), Verdict::Invalid);
    assert_eq!(
        verdict(&rows("\"xya\"")),
        Verdict::Invalid,
        "the put runs before the read"
    );
}

/// Of two orders of concurrent appends, the one a later read observes ("ba", a prefix of
/// "bac") stays live while the other ("ab") is dead; the dead one must not stand in for it. With
/// a read of "cab" both are dead, and no order works.
#[test]
fn a_dead_order_does_not_stand_in_for_a_live_one() {
    let tail = [
        (60, "invoke", "append", "\"c\""),
        (60, "ok", "append", "\"c\""),
        (61, "invoke", "read", "null"),
        (61, "ok", "read", "\"bac\""),
    ];
    let h = many_appends_then(2, &tail);
    assert_eq!(brute_force(&h), Verdict::Valid);
    assert_eq!(verdict(&h), Verdict::Valid);
    let mut bad = tail;
    bad[3].3 = "\"cab\"";
    let h = many_appends_then(2, &bad);
    assert_eq!(brute_force(&h), Verdict::Invalid);
    assert_eq!(verdict(&h), Verdict::Invalid);
}
