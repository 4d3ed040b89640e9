//! The stale-candidate fault on stand-in nodes: a follower cut off at the start; at the stop
//! the leader killed, the lagging node left the only link between the others for the hold,
//! then everything healed and the leader started again.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{isolated, node_connects};
use riptide_nemesis::{
    ClusterView, FaultName, Nemesis, NemesisConfig, NodeId, NodeState, Phase, Supervisor,
};

const PORT: u16 = 7700;

fn nemesis(
    sb: &riptide_nemesis::Sandbox,
    supervisor: &Arc<Supervisor>,
    spec: &str,
    leader: Option<NodeId>,
) -> Nemesis {
    let config = NemesisConfig {
        seed: 5,
        spec: spec.parse().unwrap(),
        interval: Duration::ZERO,
        overlap: false,
        jitter: 0.0,
        deck: false,
    };
    let view: Arc<dyn ClusterView> = Arc::new(move || leader);
    Nemesis::new(config, supervisor.clone(), Some(common::firewall(sb)), view).unwrap()
}

#[test]
fn the_lagging_follower_is_left_the_only_link_between_the_others_once_the_leader_is_dead() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let fault = nemesis(sb, &supervisor, "stale-candidate:3000", Some(2));
        let leader_pid = supervisor.pid(2).unwrap();

        let start = fault.start_next().unwrap().pop().unwrap();
        assert_eq!(
            (start.f, start.fault),
            (Phase::Start, FaultName::StaleCandidate)
        );
        assert_eq!(start.nodes.len(), 1);
        let lagging = start.nodes[0];
        assert_ne!(lagging, 2, "the leader is never the one cut off");
        assert_eq!(start.groups[0], [lagging]);
        assert_eq!(start.hold_ms, Some(3000));
        assert_eq!(start.rules.len(), 8, "{:?}", start.rules);
        let others: Vec<NodeId> = (1..=5).filter(|&n| n != lagging).collect();
        for &n in &others {
            assert!(
                !node_connects(lagging, n, PORT),
                "n{lagging} still reaches n{n}"
            );
        }
        assert!(node_connects(others[0], others[1], PORT));
        assert!(start.value().to_string().contains("\"hold_ms\":3000"));

        std::thread::scope(|s| {
            let began = Instant::now();
            let stopper = s.spawn(|| fault.stop_active().unwrap());
            std::thread::sleep(Duration::from_millis(300));
            // The hold: the leader is dead, the lagging node reaches everyone, nobody else
            // reaches anyone but it.
            let killed = supervisor.status(2).unwrap().state;
            let mut wrong = Vec::new();
            for &n in others.iter().filter(|&&n| n != 2) {
                if !node_connects(n, lagging, PORT) {
                    wrong.push(format!("n{n} cannot reach n{lagging}"));
                }
                for &m in others.iter().filter(|&&m| m != n && m != 2) {
                    if node_connects(n, m, PORT) {
                        wrong.push(format!("n{n} still reaches n{m}"));
                    }
                }
            }
            let stop = stopper.join().unwrap();
            assert_eq!(killed, NodeState::Killed);
            assert!(wrong.is_empty(), "{wrong:?} in the hold of {stop:?}");
            assert!(began.elapsed() >= Duration::from_millis(3000));
            assert_eq!(
                (stop.f, stop.fault),
                (Phase::Stop, FaultName::StaleCandidate)
            );
            assert_eq!(stop.killed_leader, Some(2));
            assert_eq!(stop.pids[&2], leader_pid);
            let restarted = stop.restarted[&2];
            assert_ne!(restarted, leader_pid);
            assert_eq!(supervisor.pid(2), Some(restarted));
            // The cut flushed, the star's 4 · 3 directed links, the flush after the hold.
            assert_eq!(stop.rules.len(), 1 + 12 + 1, "{:?}", stop.rules);
            assert_eq!(stop.rules[0], "iptables -F riptide");
            assert_eq!(stop.rules[13], "iptables -F riptide");
            assert_eq!(stop.error, None);
            assert!(stop.value().to_string().contains("\"killed_leader\":2"));
        });
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Running);
        // The restarted stand-in listens again within moments.
        common::ask_when_ready(2, PORT, "pid");
        for n in 1..=5 {
            for m in (1..=5).filter(|&m| m != n) {
                assert!(
                    node_connects(n, m, PORT),
                    "n{n} cannot reach n{m} after the stop"
                );
            }
        }
        assert!(fault.firewall().unwrap().rules().is_empty());
        assert!(
            fault.heal_all().is_empty(),
            "the stop left something in place"
        );
    });
}

#[test]
fn with_no_leader_known_at_the_stop_nobody_is_killed_and_the_cut_is_healed() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let fault = nemesis(sb, &supervisor, "stale-candidate:5000", None);
        let pids: Vec<_> = (1..=3).map(|n| supervisor.pid(n).unwrap()).collect();
        let start = fault.start_next().unwrap().pop().unwrap();
        assert_eq!(start.fault, FaultName::StaleCandidate);
        let began = Instant::now();
        let stop = fault.stop_active().unwrap();
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "no hold without a kill"
        );
        assert_eq!(stop.killed_leader, None);
        assert!(stop.pids.is_empty() && stop.restarted.is_empty());
        assert!(
            stop.note.as_deref().unwrap_or("").contains("nobody killed"),
            "{stop:?}"
        );
        assert_eq!(stop.rules, ["iptables -F riptide"]);
        let after: Vec<_> = (1..=3).map(|n| supervisor.pid(n).unwrap()).collect();
        assert_eq!(after, pids);
        assert!(
            node_connects(1, 2, PORT) && node_connects(2, 3, PORT) && node_connects(1, 3, PORT)
        );
        assert!(fault.heal_all().is_empty());
    });
}
