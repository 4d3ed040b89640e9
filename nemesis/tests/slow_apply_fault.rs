//! The slow-apply fault on stand-in nodes, with a cluster view that records what it was asked:
//! who is slowed and by how much, what the stop undoes, and what a node that restarted meanwhile
//! or refused gets, and when leadership is handed to a slowed node.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{isolated, track};
use riptide_nemesis::{
    ClusterView, FaultName, Nemesis, NemesisConfig, NemesisEvent, Phase, Supervisor,
    TransferAnswer, TransferOutcome,
};

const PORT: u16 = 7500;

/// A view that takes every slow-apply request but those for `refuse`, and remembers them all.
#[derive(Default)]
struct Hooks {
    asked: Mutex<Vec<(u64, u64)>>,
    transfers: Mutex<Vec<u64>>,
    refuse: Option<u64>,
    /// No leader known (else n1 leads).
    leaderless: bool,
}

impl ClusterView for Hooks {
    fn leader(&self) -> Option<u64> {
        (!self.leaderless).then_some(1)
    }

    fn transfer_leader(&self, to: u64) -> TransferAnswer {
        self.transfers.lock().unwrap().push(to);
        TransferAnswer::Done
    }

    fn slow_apply(&self, node: u64, delay_ms: u64) -> Result<(), String> {
        self.asked.lock().unwrap().push((node, delay_ms));
        match self.refuse == Some(node) {
            true => Err("connection refused".into()),
            false => Ok(()),
        }
    }
}

fn nemesis(supervisor: &Arc<Supervisor>, seed: u64, spec: &str, view: Arc<Hooks>) -> Nemesis {
    let config = NemesisConfig {
        seed,
        spec: spec.parse().unwrap(),
        interval: Duration::ZERO,
        overlap: false,
        jitter: 0.0,
        deck: false,
    };
    Nemesis::new(config, supervisor.clone(), None, view).unwrap()
}

/// Starts (and stops) slow-apply faults until one satisfies `wanted`, within 100 draws.
fn start_until(nem: &Nemesis, wanted: impl Fn(&NemesisEvent) -> bool) -> NemesisEvent {
    for _ in 0..100 {
        let start = nem.start_next().unwrap().pop().unwrap();
        if wanted(&start) {
            return start;
        }
        nem.stop_active().unwrap();
    }
    panic!("100 draws and none was the fault wanted");
}

#[test]
fn slow_apply_asks_each_node_for_the_delay_and_the_stop_takes_it_back() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let view = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 3, "slow-apply:300", view.clone());
        let start = nem.start_next().unwrap().pop().unwrap();
        assert_eq!((start.f, start.fault), (Phase::Start, FaultName::SlowApply));
        assert!(
            !start.nodes.is_empty() && start.error.is_none(),
            "{start:?}"
        );
        let slowed: Vec<u64> = start.pids.keys().copied().collect();
        assert_eq!(slowed, start.nodes, "every node of the plan took the delay");
        let asked: Vec<(u64, u64)> = slowed.iter().map(|&n| (n, 300)).collect();
        assert_eq!(*view.asked.lock().unwrap(), asked);
        let value = start.value();
        assert_eq!(value["fault"], "slow-apply");
        assert_eq!(value["apply_delay_ms"], 300);

        let stop = nem.stop_active().unwrap();
        assert_eq!((stop.f, stop.fault), (Phase::Stop, FaultName::SlowApply));
        assert_eq!(stop.pids, start.pids);
        assert!(stop.error.is_none() && stop.note.is_none(), "{stop:?}");
        let undone: Vec<(u64, u64)> = slowed.iter().map(|&n| (n, 0)).collect();
        assert_eq!(view.asked.lock().unwrap()[asked.len()..], undone[..]);
        supervisor.shutdown();
    });
}

#[test]
fn a_node_restarted_meanwhile_is_not_asked_again_and_a_refusal_is_an_error() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let view = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 1, "slow-apply", view.clone());
        let start = start_until(&nem, |start| start.nodes.len() >= 2);
        assert_eq!(start.value()["apply_delay_ms"], 500, "the default delay");
        let restarted = start.nodes[0];
        supervisor.kill(restarted).unwrap();
        track(supervisor.restart(restarted).unwrap());
        let before = view.asked.lock().unwrap().len();
        let stop = nem.stop_active().unwrap();
        let note = stop.note.clone().unwrap_or_default();
        assert!(
            note.contains(&format!("n{restarted} restarted meanwhile")),
            "{stop:?}"
        );
        let asked_at_stop = view.asked.lock().unwrap()[before..].to_vec();
        assert!(asked_at_stop
            .iter()
            .all(|&(n, ms)| n != restarted && ms == 0));
        assert_eq!(asked_at_stop.len(), start.nodes.len() - 1);
        drop(nem);

        let refusing = Arc::new(Hooks {
            refuse: Some(2),
            ..Default::default()
        });
        let nem = nemesis(&supervisor, 1, "slow-apply", refusing.clone());
        let start = start_until(&nem, |start| start.nodes.contains(&2));
        let error = start.error.clone().unwrap_or_default();
        assert!(
            error.contains("n2 not slowed: connection refused"),
            "{start:?}"
        );
        assert!(!start.pids.contains_key(&2), "n2 is not part of the fault");
        let before = refusing.asked.lock().unwrap().len();
        nem.stop_active().unwrap();
        let asked_at_stop = refusing.asked.lock().unwrap()[before..].to_vec();
        assert!(!asked_at_stop.contains(&(2, 0)), "{asked_at_stop:?}");
        supervisor.shutdown();
    });
}

#[test]
fn a_slowed_follower_takes_the_lead_and_the_leader_is_never_slowed() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let view = Arc::new(Hooks::default());
        let nem = nemesis(&supervisor, 7, "slow-apply", view.clone());
        for _ in 0..10 {
            let start = nem.start_next().unwrap().pop().unwrap();
            let transfers = std::mem::take(&mut *view.transfers.lock().unwrap());
            assert!(!start.nodes.contains(&1), "n1 leads: {start:?}");
            assert!((1..=2).contains(&start.nodes.len()), "{start:?}");
            assert_eq!(
                transfers,
                [start.nodes[0]],
                "the first slowed node takes over"
            );
            let transfer = start.transfer.clone().unwrap();
            assert_eq!(
                (transfer.from, transfer.to),
                (Some(1), Some(start.nodes[0]))
            );
            assert_eq!(transfer.outcome, TransferOutcome::Done);
            let value = start.value();
            assert_eq!(value["outcome"], "done", "{value}");
            assert_eq!(value["to"], value["nodes"][0], "{value}");
            nem.stop_active().unwrap();
        }
        drop(nem);

        let leaderless = Arc::new(Hooks {
            leaderless: true,
            ..Default::default()
        });
        let nem = nemesis(&supervisor, 7, "slow-apply", leaderless.clone());
        let start = nem.start_next().unwrap().pop().unwrap();
        assert!(
            !start.pids.is_empty(),
            "the drawn nodes are slowed: {start:?}"
        );
        assert!(leaderless.transfers.lock().unwrap().is_empty());
        let transfer = start.transfer.clone().unwrap();
        assert_eq!(transfer.outcome, TransferOutcome::NoLeader);
        assert!(start.note.is_none(), "no stand-in note: {start:?}");
        nem.stop_active().unwrap();
        supervisor.shutdown();
    });
}
