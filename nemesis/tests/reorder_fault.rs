//! The reorder fault on stand-in nodes, with a cluster view that records what it was asked:
//! every member asked with its own seed, the stop turning it off, a node restarted meanwhile
//! left alone, a refusal recorded as an error, and the fault's class of its own.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{isolated, track};
use riptide_nemesis::{ClusterView, FaultName, Nemesis, NemesisConfig, Phase, Supervisor};

const PORT: u16 = 7600;

/// A view that takes every reorder request but those for `refuse`, and remembers them all as
/// (node, max_delay_ms, seed).
#[derive(Default)]
struct Hooks {
    asked: Mutex<Vec<(u64, u64, u64)>>,
    refuse: Option<u64>,
}

impl ClusterView for Hooks {
    fn leader(&self) -> Option<u64> {
        Some(1)
    }

    fn reorder(&self, node: u64, max_delay_ms: u64, seed: u64) -> Result<(), String> {
        self.asked.lock().unwrap().push((node, max_delay_ms, seed));
        match self.refuse == Some(node) {
            true => Err("connection refused".into()),
            false => Ok(()),
        }
    }

    /// Node n held 10·n messages and copied n; node 3 cannot say.
    fn reorder_counts(&self, node: u64) -> Option<(u64, u64)> {
        (node != 3).then_some((10 * node, node))
    }
}

fn nemesis(supervisor: &Arc<Supervisor>, seed: u64, spec: &str, view: Arc<Hooks>) -> Nemesis {
    let config = NemesisConfig {
        seed,
        spec: spec.parse().unwrap(),
        interval: Duration::ZERO,
        overlap: true,
        jitter: 0.0,
        deck: false,
    };
    Nemesis::new(config, supervisor.clone(), None, view).unwrap()
}

#[test]
fn reorder_asks_every_member_with_a_seed_of_its_own_and_the_stop_turns_it_off() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let view = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 3, "reorder:40", view.clone());
        let start = nem.start_next().unwrap().pop().unwrap();
        assert_eq!((start.f, start.fault), (Phase::Start, FaultName::Reorder));
        assert_eq!(start.nodes, [1, 2, 3]);
        assert!(start.error.is_none(), "{start:?}");
        assert_eq!(start.pids.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        let asked = view.asked.lock().unwrap().clone();
        assert_eq!(
            asked.iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(),
            [(1, 40), (2, 40), (3, 40)]
        );
        let seeds: std::collections::BTreeSet<u64> = asked.iter().map(|a| a.2).collect();
        assert_eq!(
            seeds.len(),
            3,
            "each node draws from its own seed: {asked:?}"
        );
        let value = start.value();
        assert_eq!(value["fault"], "reorder");
        assert_eq!(value["max_delay_ms"], 40);

        let stop = nem.stop_active().unwrap();
        assert_eq!((stop.f, stop.fault), (Phase::Stop, FaultName::Reorder));
        assert_eq!(
            (stop.nodes.clone(), stop.pids.clone()),
            (start.nodes.clone(), start.pids.clone())
        );
        assert!(stop.error.is_none() && stop.note.is_none(), "{stop:?}");
        // What each node's hook did, as its status says; n3's status was not to be had.
        let reordered = &stop.value()["reordered"];
        assert_eq!(reordered["1"], serde_json::json!({"held": 10, "copied": 1}));
        assert_eq!(reordered["2"], serde_json::json!({"held": 20, "copied": 2}));
        assert!(reordered.get("3").is_none(), "{reordered}");
        assert!(
            start.value().get("reordered").is_none(),
            "only the stop says"
        );
        assert_eq!(
            view.asked.lock().unwrap()[3..],
            [(1, 0, 0), (2, 0, 0), (3, 0, 0)]
        );

        // The same seed draws the same per-node seeds (a run's test.json fixes them).
        let again = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 3, "reorder:40", again.clone());
        nem.start_next().unwrap();
        assert_eq!(again.asked.lock().unwrap()[..], asked[..]);
        nem.stop_active().unwrap();
        supervisor.shutdown();
    });
}

#[test]
fn a_node_restarted_meanwhile_is_left_alone_and_a_refusal_is_an_error() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let view = Arc::new(Hooks {
            refuse: Some(3),
            ..Default::default()
        });
        let nem = nemesis(&supervisor, 1, "reorder", view.clone());
        let start = nem.start_next().unwrap().pop().unwrap();
        assert_eq!(start.value()["max_delay_ms"], 50, "the default hold");
        let error = start.error.clone().unwrap_or_default();
        assert!(
            error.contains("n3 does not reorder: connection refused"),
            "{start:?}"
        );
        assert_eq!(start.nodes, [1, 2], "n3 is not part of the fault");
        supervisor.kill(2).unwrap();
        track(supervisor.restart(2).unwrap());
        let before = view.asked.lock().unwrap().len();
        let stop = nem.stop_active().unwrap();
        let note = stop.note.clone().unwrap_or_default();
        assert!(note.contains("n2 restarted meanwhile"), "{stop:?}");
        assert_eq!(view.asked.lock().unwrap()[before..], [(1, 0, 0)]);
        supervisor.shutdown();
    });
}

#[test]
fn reorder_overlaps_with_the_faults_of_every_other_class() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let view = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 2, "reorder,pause", view.clone());
        let mut faults = std::collections::BTreeSet::new();
        // With overlap, each start puts one fault of each free class in place.
        for _ in 0..6 {
            for event in nem.start_next().unwrap() {
                faults.insert(event.fault);
            }
            if nem.active().is_some() && faults.len() == 2 {
                break;
            }
        }
        assert!(
            faults.contains(&FaultName::Reorder) && faults.contains(&FaultName::Pause),
            "{faults:?}"
        );
        let _ = nem.heal_all();
        supervisor.shutdown();
    });
}
