//! Parse once: `History::from_records` over records the runner already parsed gives exactly what
//! `load_history(path, Format::Jsonl)` gives for the file: the same history (ops, keys, values,
//! lines, stats), or the same error.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_checker::{load_history, parse_history, Format, History};

/// Both ways of building the history of `text`, which came from `path`.
fn both_ways(
    path: &Path,
    text: &str,
) -> (
    riptide_checker::Result<History>,
    riptide_checker::Result<History>,
) {
    let records: Vec<(usize, riptide_history::Record)> = riptide_history::records(text)
        .map(|(line, r)| (line, r.unwrap_or_else(|e| panic!("line {line}: {e}"))))
        .collect();
    let from_records = History::from_records(path, records.iter().map(|(l, r)| (*l, r)));
    (parse_history(path, text, Format::Jsonl), from_records)
}

fn assert_same(path: &Path, text: &str) {
    match both_ways(path, text) {
        (Ok(parsed), Ok(built)) => {
            assert!(!parsed.lines.is_empty() || text.trim().is_empty());
            assert_eq!(built, parsed, "{}", path.display());
        }
        (Err(parsed), Err(built)) => assert_eq!(built.to_string(), parsed.to_string()),
        (parsed, built) => panic!(
            "{}: the file gives {:?} but its records give {:?}",
            path.display(),
            parsed.map(|h| h.stats),
            built.map(|h| h.stats)
        ),
    }
}

#[test]
fn every_riptide_history_in_the_test_data_builds_the_same_from_its_records() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            let loaded = load_history(&path, Format::Jsonl).unwrap();
            assert_same(&path, &text);
            assert_eq!(parse_history(&path, &text, Format::Jsonl).unwrap(), loaded);
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} histories in {}", dir.display());
}

/// A random riptide history: several keys (some written as integers), every value shape a
/// client op can carry, ok / fail / info / unfinished ops, nemesis events and blank lines.
fn random_history(seed: u64, events: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::new();
    let concurrency = 4u64;
    let mut process: Vec<u64> = (0..concurrency).collect();
    let mut open: Vec<Option<(String, String, String)>> = vec![None; concurrency as usize];
    for index in 0..events {
        if rng.gen_bool(0.03) {
            out.push('\n');
        }
        let w = rng.gen_range(0..concurrency as usize);
        let time = index * 1000;
        if rng.gen_bool(0.05) {
            out.push_str(&format!(
                r#"{{"index":{index},"time":{time},"process":"nemesis","type":"info","f":"start","value":{{"fault":"kill","nodes":[{w}]}}}}"#
            ));
        } else if let Some((f, key, value)) = open[w].take() {
            let (ty, value) = match rng.gen_range(0..10) {
                0 => ("fail", value),
                1 => ("info", value),
                _ if f == "read" => ("ok", ["null", "3", "\"ab\""][rng.gen_range(0..3)].into()),
                _ => ("ok", value),
            };
            out.push_str(&format!(
                r#"{{"index":{index},"time":{time},"process":{},"type":"{ty}","f":"{f}","key":{key},"value":{value}}}"#,
                process[w]
            ));
            if ty == "info" {
                process[w] += concurrency;
            }
        } else {
            let key = match rng.gen_range(0..4) {
                0 => "7".to_string(),
                k => format!("\"k{k}\""),
            };
            let (f, value) = match rng.gen_range(0..5) {
                0 => ("read", "null".to_string()),
                1 => ("write", rng.gen_range(-2..5i64).to_string()),
                2 => ("put", format!("\"{}\"", rng.gen_range(0..3))),
                3 => ("append", format!("\"x{}\"", rng.gen_range(0..3))),
                _ => (
                    "cas",
                    format!("[{},{}]", rng.gen_range(0..3), rng.gen_range(0..3)),
                ),
            };
            out.push_str(&format!(
                r#"{{"index":{index},"time":{time},"process":{},"type":"invoke","f":"{f}","key":{key},"value":{value}}}"#,
                process[w]
            ));
            open[w] = Some((f.to_string(), key, value));
        }
        out.push('\n');
    }
    out
}

#[test]
fn a_generated_history_builds_the_same_from_its_records() {
    for seed in 0..20 {
        let text = random_history(seed, 400);
        let path = PathBuf::from(format!("generated-{seed}.jsonl"));
        let parsed = parse_history(&path, &text, Format::Jsonl).unwrap();
        assert!(parsed.stats.fail > 0 && parsed.stats.info > 0 && parsed.stats.ignored > 0);
        assert!(parsed.keys.len() >= 3, "{:?}", parsed.keys);
        assert_same(&path, &text);
    }
}

#[test]
fn a_broken_history_gives_the_same_error_from_its_records() {
    let invoke = |p: &str, f: &str, value: &str| {
        format!(r#"{{"process":{p},"type":"invoke","f":"{f}","value":{value}}}"#)
    };
    let done = |p: &str, ty: &str, f: &str, value: &str| {
        format!(r#"{{"process":{p},"type":"{ty}","f":"{f}","value":{value}}}"#)
    };
    let cases = [
        vec![done("0", "ok", "read", "1")],
        vec![invoke("0", "read", "null"), invoke("0", "read", "null")],
        vec![
            invoke("0", "write", "1"),
            done("0", "info", "write", "1"),
            invoke("0", "read", "null"),
        ],
        vec![invoke("0", "frobnicate", "1")],
        vec![invoke("0", "cas", "1")],
        vec![invoke("0", "write", "[1,2]")],
        vec![invoke("0", "write", "1.5")],
        vec![invoke("0", "write", "1"), done("0", "ok", "read", "1")],
        vec![invoke("0", "read", "null"), done("0", "ok", "read", "{}")],
        vec![invoke("0", "cas", "[1,[2]]")],
        vec![invoke("0", "cas", "[1,18446744073709551615]")],
    ];
    for lines in cases {
        let text = lines.join("\n\n");
        let path = Path::new("broken.jsonl");
        let (parsed, built) = both_ways(path, &text);
        let parsed = parsed.expect_err(&text).to_string();
        assert!(parsed.starts_with("broken.jsonl:"), "{parsed}");
        assert_eq!(built.expect_err(&text).to_string(), parsed);
    }
}
