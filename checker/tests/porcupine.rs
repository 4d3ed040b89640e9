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
/// (deterministic, unlike time). With the plain search `kv/c50-ok.txt` needs about 178,000 and
/// `jepsen/etcd_002.log` about 21,600; these bounds catch a rule that stops working.
#[test]
fn the_slowest_porcupine_histories_stay_small() {
    let dir = porcupine_dir();
    for (file, bound) in [
        ("kv/c50-ok.txt", 15_000),
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
