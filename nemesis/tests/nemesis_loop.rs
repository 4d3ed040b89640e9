//! The whole nemesis on a small cluster of stand-in nodes: the timed loop, the same seed replayed,
//! leader targets, heal at the end and on panic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ask_when_ready, isolated, node_connects, track};
use riptide_nemesis::{
    ClusterView, FaultName, Nemesis, NemesisConfig, NemesisEvent, NoLeader, NodeState, Phase, Plan,
    Sandbox, Shutdown, Supervisor, Target, TransferAnswer, TransferOutcome,
};

const PORT: u16 = 7300;

fn nemesis(
    sb: &Sandbox,
    supervisor: &Arc<Supervisor>,
    seed: u64,
    spec: &str,
    interval: Duration,
    view: Arc<dyn ClusterView>,
) -> Nemesis {
    let config = NemesisConfig {
        seed,
        spec: spec.parse().unwrap(),
        interval,
        overlap: false,
        jitter: 0.0,
        deck: false,
    };
    let firewall = common::firewall(sb);
    Nemesis::new(config, supervisor.clone(), Some(firewall), view).unwrap()
}

/// Every node runs, answers with the pid the supervisor knows, and no rule is left.
fn assert_all_healed(nemesis: &Nemesis) {
    let firewall = nemesis.firewall().unwrap();
    assert!(firewall.rules().is_empty());
    assert_eq!(firewall.listing().unwrap().trim(), "-N riptide");
    for status in nemesis.supervisor().statuses() {
        assert_eq!(status.state, NodeState::Running, "{status:?}");
        let pid = status.pid.unwrap();
        track(pid);
        assert_eq!(ask_when_ready(status.id, PORT, "pid"), pid.to_string());
    }
    for (a, b) in [(1, 2), (2, 3), (3, 1)] {
        assert!(node_connects(a, b, PORT), "{a} -> {b} still cut");
    }
}

#[test]
fn the_loop_alternates_starts_and_stops_records_what_it_did_and_heals_at_the_end() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let nemesis = nemesis(
            sb,
            &supervisor,
            7,
            "kill,pause,partition,loss,delay,restart",
            Duration::from_millis(150),
            Arc::new(NoLeader),
        );
        let shutdown = Shutdown::new();
        let mut events: Vec<NemesisEvent> = Vec::new();
        std::thread::scope(|s| {
            let runner = s.spawn(|| nemesis.run(&shutdown, &mut |e| events.push(e)));
            std::thread::sleep(Duration::from_millis(2500));
            shutdown.trigger();
            runner.join().unwrap();
        });
        // 2.5 s at 150 ms per step is about 16 events; a loaded machine may manage fewer.
        assert!(events.len() >= 6, "only {} events", events.len());
        for pair in events.chunks(2) {
            let [start, stop] = pair else {
                panic!("the loop ended with a fault still active: {pair:?}")
            };
            assert_eq!((start.f, stop.f), (Phase::Start, Phase::Stop));
            assert_eq!((start.fault, start.kind), (stop.fault, stop.kind));
            assert_eq!(start.nodes, stop.nodes);
            assert_eq!(start.error, None, "{start:?}");
            assert_eq!(stop.error, None, "{stop:?}");
            match start.fault {
                FaultName::Partition | FaultName::Loss | FaultName::Stall => {
                    assert!(!start.rules.is_empty());
                    assert!(start
                        .rules
                        .iter()
                        .all(|r| r.starts_with("iptables -A riptide")));
                    // After a delay, a heal flushes the delay chain too.
                    let [heal] = &stop.rules[..] else {
                        panic!("{stop:?}")
                    };
                    assert!(heal.starts_with("iptables -F riptide"), "{heal}");
                }
                FaultName::Delay => {
                    assert!(!start.rules.is_empty());
                    assert!(start.rules.iter().all(|r| {
                        r.starts_with("iptables -A riptide-delay ") && r.contains("-j NFQUEUE")
                    }));
                    assert_eq!(
                        stop.rules,
                        ["iptables -F riptide; iptables -F riptide-delay"]
                    );
                    assert_eq!(start.value()["max_delay_ms"], 100);
                }
                FaultName::Kill => {
                    assert_eq!(
                        start.pids.keys().collect::<Vec<_>>(),
                        start.nodes.iter().collect::<Vec<_>>()
                    );
                    for (id, old) in &start.pids {
                        let new = stop.pids[id];
                        assert_ne!(new, *old, "node {id} restarted with a new pid");
                        assert!(common::is_dead(*old));
                        track(new);
                    }
                }
                FaultName::Restart => {
                    let nodes: Vec<_> = start.nodes.iter().collect();
                    assert_eq!(start.pids.keys().collect::<Vec<_>>(), nodes);
                    assert_eq!(start.restarted.keys().collect::<Vec<_>>(), nodes);
                    for (id, old) in &start.pids {
                        let new = start.restarted[id];
                        assert_ne!(new, *old, "node {id} started again with a new pid");
                        assert!(common::is_dead(*old));
                        track(new);
                    }
                    assert!(
                        stop.pids.is_empty(),
                        "nothing to undo at the stop: {stop:?}"
                    );
                }
                FaultName::Pause => assert_eq!(start.pids, stop.pids),
                FaultName::Heal => panic!("the loop never heals by sweep"),
                FaultName::PowerCut
                | FaultName::Corrupt
                | FaultName::TransferLeader
                | FaultName::SlowApply
                | FaultName::Reorder
                | FaultName::StaleCandidate
                | FaultName::Membership => {
                    panic!("not in this spec")
                }
            }
            // What the runner writes as the op's value.
            let value = start.value();
            assert!(value.get("f").is_none());
            assert!(value["nodes"].is_array() && value["rules"].is_array());
        }
        assert!(
            nemesis.heal_all().is_empty(),
            "the loop left nothing to heal"
        );
        assert_all_healed(&nemesis);
    });
}

#[test]
fn overlapping_faults_pair_a_process_fault_with_a_network_fault_and_heal() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let config = NemesisConfig {
            seed: 5,
            spec: "kill,pause,partition,loss".parse().unwrap(),
            interval: Duration::from_millis(150),
            overlap: true,
            jitter: 0.0,
            deck: false,
        };
        let firewall = common::firewall(sb);
        let nemesis = Nemesis::new(
            config,
            supervisor.clone(),
            Some(firewall),
            Arc::new(NoLeader),
        )
        .unwrap();
        let shutdown = Shutdown::new();
        let mut events: Vec<NemesisEvent> = Vec::new();
        std::thread::scope(|s| {
            let runner = s.spawn(|| nemesis.run(&shutdown, &mut |e| events.push(e)));
            std::thread::sleep(Duration::from_millis(2500));
            shutdown.trigger();
            runner.join().unwrap();
        });
        assert!(events.len() >= 6, "only {} events", events.len());
        // Replay the events: never two faults of one class, sometimes one of each, all stopped.
        let mut active: Vec<FaultName> = Vec::new();
        let mut overlapped = false;
        for e in &events {
            let network = matches!(e.fault, FaultName::Partition | FaultName::Loss);
            match e.f {
                Phase::Start => {
                    assert!(
                        active.iter().all(|a| matches!(a, FaultName::Partition | FaultName::Loss) != network),
                        "two faults of one class: {active:?} + {:?}",
                        e.fault
                    );
                    active.push(e.fault);
                    overlapped |= active.len() == 2;
                }
                Phase::Stop => {
                    assert_eq!(
                        active.first(),
                        Some(&e.fault),
                        "the oldest fault stops first"
                    );
                    active.remove(0);
                }
            }
            assert_eq!(e.error, None, "{e:?}");
            for pid in e.pids.values() {
                track(*pid);
            }
        }
        assert!(active.is_empty(), "faults left active: {active:?}");
        assert!(
            overlapped,
            "a process fault and a network fault never overlapped: {events:?}"
        );
        assert!(nemesis.heal_all().is_empty());
        assert_all_healed(&nemesis);
    });
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let replay = |sb: &Sandbox| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let nemesis = nemesis(
            sb,
            &supervisor,
            99,
            "kill,pause,partition,loss",
            Duration::ZERO,
            Arc::new(NoLeader),
        );
        let mut seen = Vec::new();
        for _ in 0..12 {
            let start = nemesis.start_next().unwrap().pop().unwrap();
            let stop = nemesis.stop_active().unwrap();
            for pid in start.pids.values().chain(stop.pids.values()) {
                track(*pid);
            }
            // Everything but the pids, which the kernel chooses.
            seen.push((
                start.fault,
                start.kind,
                start.target,
                start.nodes,
                start.rules,
            ));
        }
        seen
    };
    isolated(|sb| {
        let first = replay(sb);
        let second = replay(sb);
        assert_eq!(first, second);
        let families: std::collections::BTreeSet<_> = first.iter().map(|s| s.0).collect();
        assert!(families.len() >= 3, "a varied sequence: {families:?}");
    });
}

#[test]
fn leader_targets_hit_the_node_the_cluster_view_names() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let leader: Arc<dyn ClusterView> = Arc::new(|| Some(2));
        let net = nemesis(
            sb,
            &supervisor,
            1,
            "partition:isolate-leader",
            Duration::ZERO,
            leader.clone(),
        );
        let start = net.start_next().unwrap().pop().unwrap();
        assert_eq!(start.groups, vec![vec![2], vec![1, 3]]);
        assert_eq!(start.rules.len(), 4);
        assert!(start.rules.iter().all(|r| r.contains("127.0.0.12")));
        assert!(!node_connects(1, 2, PORT) && !node_connects(3, 2, PORT));
        assert!(node_connects(1, 3, PORT));
        net.stop_active().unwrap();
        assert!(node_connects(1, 2, PORT));
        drop(net);

        let kill = nemesis(sb, &supervisor, 1, "kill:leader", Duration::ZERO, leader);
        let old = supervisor.pid(2).unwrap();
        let start = kill.start_next().unwrap().pop().unwrap();
        assert_eq!(start.nodes, [2]);
        assert_eq!(start.pids[&2], old);
        assert!(common::is_dead(old));
        assert_eq!(supervisor.status(1).unwrap().state, NodeState::Running);
        let stop = kill.stop_active().unwrap();
        track(stop.pids[&2]);
        assert_all_healed(&kill);
    });
}

#[test]
fn heal_all_undoes_whatever_is_in_place_even_after_a_panic() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());

        // A fault in place when the run ends: heal_all stops it and reports it.
        let nemesis = nemesis(
            sb,
            &supervisor,
            3,
            "pause:all",
            Duration::ZERO,
            Arc::new(NoLeader),
        );
        nemesis.start_next().unwrap().pop().unwrap();
        let healed = nemesis.heal_all();
        assert_eq!(healed.len(), 1);
        assert_eq!(
            (healed[0].fault, healed[0].f),
            (FaultName::Pause, Phase::Stop)
        );
        assert_all_healed(&nemesis);
        drop(nemesis);

        // Faults applied behind the loop's back: the sweep finds them.
        let nemesis = nemesis_with(sb, &supervisor);
        supervisor.pause(1).unwrap();
        supervisor.kill(3).unwrap();
        let rule = riptide_nemesis::Rule::between(1, 2, riptide_nemesis::RuleKind::Drop);
        nemesis.firewall().unwrap().apply(&[rule]).unwrap();
        let healed = nemesis.heal_all();
        assert_eq!(healed.len(), 1);
        assert_eq!(healed[0].fault, FaultName::Heal);
        assert_eq!(healed[0].nodes, [1, 3]);
        assert_eq!(healed[0].rules, ["iptables -F riptide"]);
        track(healed[0].pids[&3]);
        assert_all_healed(&nemesis);
        drop(nemesis);

        // A panic while a partition and nothing else is in place: unwinding drops the nemesis,
        // which heals.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let nemesis = nemesis_with(sb, &supervisor);
            let plan = riptide_nemesis::Plan::Partition(
                riptide_nemesis::partition::partition(
                    riptide_nemesis::PartitionKind::One,
                    &[1, 2, 3],
                    &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0),
                    None,
                )
                .unwrap(),
            );
            nemesis.start(plan).unwrap();
            supervisor.pause(2).unwrap();
            panic!("the runner fails mid-run");
        }));
        assert!(outcome.is_err());
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Running);
        for (a, b) in [(1, 2), (2, 3), (3, 1)] {
            assert!(
                node_connects(a, b, PORT),
                "{a} -> {b} still cut after the panic"
            );
        }
    });
}

fn nemesis_with(sb: &Sandbox, supervisor: &Arc<Supervisor>) -> Nemesis {
    nemesis(
        sb,
        supervisor,
        0,
        "none",
        Duration::ZERO,
        Arc::new(NoLeader),
    )
}

/// A cluster view whose leader moves when asked, and that remembers what it was asked.
#[derive(Default)]
struct MovingLeader {
    leader: std::sync::Mutex<Option<u64>>,
    asked: std::sync::Mutex<Vec<u64>>,
    refuse: bool,
}

impl ClusterView for MovingLeader {
    fn leader(&self) -> Option<u64> {
        *self.leader.lock().unwrap()
    }

    fn transfer_leader(&self, to: u64) -> TransferAnswer {
        self.asked.lock().unwrap().push(to);
        if self.refuse {
            return TransferAnswer::Refused("transfer abandoned".into());
        }
        *self.leader.lock().unwrap() = Some(to);
        TransferAnswer::Done
    }
}

/// Ten transfer-leader starts and stops from leader 1 with `seed`: each (from, to).
fn transfer_moves(
    sb: &Sandbox,
    supervisor: &Arc<Supervisor>,
    seed: u64,
) -> Vec<(Option<u64>, Option<u64>)> {
    let view = Arc::new(MovingLeader::default());
    *view.leader.lock().unwrap() = Some(1);
    let nem = nemesis(
        sb,
        supervisor,
        seed,
        "transfer-leader",
        Duration::ZERO,
        view.clone(),
    );
    let mut moves = Vec::new();
    for _ in 0..10 {
        let before = view.leader();
        let start = nem.start_next().unwrap().pop().unwrap();
        let t = start
            .transfer
            .clone()
            .expect("a transfer start says what it did");
        assert_eq!(
            (t.from, t.outcome),
            (before, TransferOutcome::Done),
            "{start:?}"
        );
        let to = t.to.unwrap();
        assert!((1..=3).contains(&to) && Some(to) != before, "{start:?}");
        assert_eq!(view.leader(), Some(to));
        let value = start.value();
        assert_eq!(value["fault"], "transfer-leader");
        assert_eq!(value["outcome"], "done");
        assert_eq!(value["to"], to);
        let stop = nem.stop_active().unwrap();
        assert_eq!(
            (stop.f, stop.fault),
            (Phase::Stop, FaultName::TransferLeader)
        );
        assert!(stop.pids.is_empty() && stop.error.is_none(), "{stop:?}");
        moves.push((t.from, t.to));
    }
    let asked: Vec<u64> = moves.iter().map(|m| m.1.unwrap()).collect();
    assert_eq!(*view.asked.lock().unwrap(), asked);
    moves
}

#[test]
fn transfer_leader_moves_leadership_to_another_node_seeded_and_records_it() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let first = transfer_moves(sb, &supervisor, 5);
        assert_eq!(first, transfer_moves(sb, &supervisor, 5));
        let targets: std::collections::BTreeSet<_> = first.iter().map(|m| m.1).collect();
        assert!(targets.len() >= 2, "leadership moved around: {targets:?}");

        let nobody = Arc::new(MovingLeader::default());
        let none = nemesis(
            sb,
            &supervisor,
            5,
            "transfer-leader",
            Duration::ZERO,
            nobody.clone(),
        );
        let t = none.start_next().unwrap().pop().unwrap().transfer.unwrap();
        assert_eq!(
            (t.from, t.to, t.outcome),
            (None, None, TransferOutcome::NoLeader)
        );
        assert!(
            nobody.asked.lock().unwrap().is_empty(),
            "nothing asked without a leader"
        );
        none.stop_active().unwrap();
        drop(none); // one firewall chain at a time

        let refusing = Arc::new(MovingLeader {
            refuse: true,
            ..Default::default()
        });
        *refusing.leader.lock().unwrap() = Some(2);
        let refused = nemesis(
            sb,
            &supervisor,
            5,
            "transfer-leader",
            Duration::ZERO,
            refusing,
        );
        let start = refused.start_next().unwrap().pop().unwrap();
        let t = start.transfer.clone().unwrap();
        assert_eq!((t.from, t.outcome), (Some(2), TransferOutcome::Refused));
        assert_ne!(t.to, Some(2));
        assert_eq!(t.reason.as_deref(), Some("transfer abandoned"));
        assert_eq!(start.value()["reason"], "transfer abandoned");
        refused.stop_active().unwrap();
        drop(refused);

        // A view that only knows the leader refuses, saying why.
        let closure = nemesis(
            sb,
            &supervisor,
            5,
            "transfer-leader",
            Duration::ZERO,
            Arc::new(|| Some(3)),
        );
        let t = closure
            .start_next()
            .unwrap()
            .pop()
            .unwrap()
            .transfer
            .unwrap();
        assert_eq!((t.from, t.outcome), (Some(3), TransferOutcome::Refused));
        assert!(t.reason.unwrap().contains("cannot transfer leadership"));
        closure.stop_active().unwrap();
        assert_all_healed(&closure);
    });
}

#[test]
fn transfer_leader_is_a_process_fault_for_overlap() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let config = NemesisConfig {
            seed: 1,
            spec: "transfer-leader,kill,partition".parse().unwrap(),
            interval: Duration::ZERO,
            overlap: true,
            jitter: 0.0,
            deck: false,
        };
        let firewall = common::firewall(sb);
        let view = Arc::new(MovingLeader::default());
        *view.leader.lock().unwrap() = Some(1);
        let nemesis = Nemesis::new(config, supervisor.clone(), Some(firewall), view).unwrap();
        nemesis.start(Plan::TransferLeader { draw: 1 }).unwrap();
        let kill = Plan::Kill {
            target: Target::One,
            nodes: vec![2],
        };
        let err = nemesis.start(kill).unwrap_err().to_string();
        assert!(err.contains("transfer-leader"), "{err}");
        let again = nemesis.start(Plan::TransferLeader { draw: 2 }).unwrap_err();
        assert!(again.to_string().contains("transfer-leader"), "{again}");
        // A network fault may overlap it.
        let loss = Plan::Loss {
            target: Target::One,
            nodes: vec![3],
            probability: 0.5,
            links: riptide_nemesis::Grudge::new(),
        };
        nemesis.start(loss).unwrap();
        assert_eq!(nemesis.active_plans().len(), 2);
        while nemesis.stop_active().is_some() {}
        assert_all_healed(&nemesis);
    });
}
