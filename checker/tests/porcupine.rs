//! Every history in `../shared/histories/porcupine` gets the verdict that Porcupine's own test
//! suite asserts for it (`expected.tsv`).

use std::path::PathBuf;

use riptide_checker::{
    check, default_model, load_history, CheckOptions, Format, ModelKind, Verdict,
};

/// `../../shared/histories/porcupine` from this crate, i.e. `shared/` beside the checkout.
fn porcupine_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine");
    assert!(
        dir.join("expected.tsv").is_file(),
        "Porcupine's histories are missing: expected {} (the shared/ folder beside the riptide \
         checkout). Put shared/ there to run this test.",
        dir.display()
    );
    dir
}

#[test]
fn every_porcupine_history_gets_its_expected_verdict() {
    let dir = porcupine_dir();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for line in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, _format, model, expected] = cols[..] else {
            panic!("expected.tsv: bad row {line:?}");
        };
        let want = match expected {
            "linearizable" => Verdict::Valid,
            "not-linearizable" => Verdict::Invalid,
            other => panic!("expected.tsv: unknown verdict {other:?}"),
        };
        let history = load_history(&dir.join(file), Format::Auto).unwrap();
        // The auto-detected format must pick the model the table names.
        let want_model = match model {
            "cas-register" => ModelKind::CasRegister,
            "kv-append" => ModelKind::Kv,
            other => panic!("expected.tsv: unknown model {other:?}"),
        };
        assert_eq!(default_model(&history), want_model, "{file}");
        let report = check(&history, want_model, &CheckOptions::default()).unwrap();
        if report.verdict != want {
            wrong.push(format!(
                "{file}: got {:?}, expected {want:?}",
                report.verdict
            ));
        }
        if want == Verdict::Invalid {
            let invalid = report.keys.values().find(|k| k.verdict == Verdict::Invalid);
            assert!(
                invalid.and_then(|k| k.counterexample.as_ref()).is_some(),
                "{file}: an invalid verdict comes with a counterexample"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 109, "expected.tsv lists 109 histories");
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

/// The pruning keeps Porcupine's slowest histories small, measured in configurations entered
/// (deterministic, unlike time). With the plain search `kv/c50-ok.txt` needs about 178,000 (about
/// 7,600 before the kv model's dead strings, 3,500 with them) and `jepsen/etcd_002.log` about
/// 21,600; these bounds catch a rule that stops working.
#[test]
fn the_slowest_porcupine_histories_stay_small() {
    let dir = porcupine_dir();
    for (file, bound) in [
        ("kv/c50-ok.txt", 6_000),
        ("jepsen/etcd_002.log", 12_000),
        ("jepsen/etcd_007.log", 5_000),
    ] {
        let history = load_history(&dir.join(file), Format::Auto).unwrap();
        let report = check(&history, default_model(&history), &CheckOptions::default()).unwrap();
        assert_eq!(report.verdict, Verdict::Valid, "{file}");
        let configurations: usize = report.keys.values().map(|k| k.configurations).sum();
        assert!(
            configurations < bound,
            "{file}: {configurations} configurations, expected fewer than {bound}"
        );
    }
}

/// `kv/c50-bad.txt`, every key checked on one thread: all ten keys are invalid. Key "0" took
/// 4.1 million configurations and hit the 1 GiB memory budget (`unknown`) before the kv model
/// merged dead strings and took greedy appends; now it is decided in a few thousand.
#[test]
fn every_key_of_c50_bad_is_invalid_on_one_thread() {
    let history = load_history(&porcupine_dir().join("kv/c50-bad.txt"), Format::Auto).unwrap();
    let opts = CheckOptions {
        all_keys: true,
        threads: Some(1),
        ..CheckOptions::default()
    };
    let report = check(&history, ModelKind::Kv, &opts).unwrap();
    assert_eq!(report.verdict, Verdict::Invalid);
    assert_eq!(report.key_counts.invalid, 10, "{:?}", report.key_counts);
    let key0 = &report.keys["0"];
    assert_eq!(key0.verdict, Verdict::Invalid);
    assert!(
        key0.configurations < 20_000,
        "{} configurations",
        key0.configurations
    );
    // Its valid sibling stays valid, key by key.
    let ok = load_history(&porcupine_dir().join("kv/c50-ok.txt"), Format::Auto).unwrap();
    let report = check(&ok, ModelKind::Kv, &opts).unwrap();
    assert_eq!(report.key_counts.valid, 10, "{:?}", report.key_counts);
}
