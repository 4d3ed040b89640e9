//! The stall fault on stand-in nodes: the leader frozen and cut off, woken while still cut off,
//! healed only after its awake time; and, with overlap, the rolling faults in its way stopped
//! first rather than the stall redrawn.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ask, isolated, node_connects};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use riptide_nemesis::partition::partition;
use riptide_nemesis::{
    ClusterView, FaultName, Nemesis, NemesisConfig, NodeState, PartitionKind, Phase, Plan, Sandbox,
    Supervisor, Target,
};

const PORT: u16 = 7600;

fn nemesis(sb: &Sandbox, supervisor: &Arc<Supervisor>, spec: &str, overlap: bool) -> Nemesis {
    let config = NemesisConfig {
        seed: 3,
        spec: spec.parse().unwrap(),
        interval: Duration::ZERO,
        overlap,
        jitter: 0.0,
        deck: false,
    };
    // Node 2 leads.
    let view: Arc<dyn ClusterView> = Arc::new(|| Some(2));
    Nemesis::new(config, supervisor.clone(), Some(common::firewall(sb)), view).unwrap()
}

#[test]
fn a_stall_freezes_the_leader_cut_off_and_wakes_it_still_cut_off_until_the_heal() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let stall = nemesis(sb, &supervisor, "stall:600", false);
        let pid = supervisor.pid(2).unwrap();

        let start = stall.start_next().unwrap().pop().unwrap();
        assert_eq!(start.fault, FaultName::Stall);
        assert_eq!(
            (start.nodes.clone(), start.target),
            (vec![2], Some(Target::Leader))
        );
        assert_eq!(start.pids[&2], pid);
        assert_eq!(start.awake_ms, Some(600));
        assert_eq!(start.groups, vec![vec![2], vec![1, 3]]);
        assert_eq!(start.rules.len(), 4, "{:?}", start.rules);
        assert!(start.rules.iter().all(|r| r.contains("127.0.0.12")));
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Paused);
        assert_eq!(common::proc_state(pid), Some('T'));
        assert!(!node_connects(1, 2, PORT) && !node_connects(2, 3, PORT));
        assert!(node_connects(1, 3, PORT));
        assert!(start.value().to_string().contains("\"awake_ms\":600"));

        std::thread::scope(|s| {
            let began = Instant::now();
            let stopper = s.spawn(|| stall.stop_active().unwrap());
            std::thread::sleep(Duration::from_millis(200));
            // Woken: it answers its clients (they sit outside the cut) but not its peers.
            assert_eq!(supervisor.status(2).unwrap().state, NodeState::Running);
            assert_eq!(
                ask(2, PORT, "pid", Duration::from_millis(500)).unwrap(),
                pid.to_string()
            );
            assert!(!node_connects(1, 2, PORT), "healed before its awake time");
            let stop = stopper.join().unwrap();
            assert!(began.elapsed() >= Duration::from_millis(600));
            assert_eq!((stop.f, stop.fault), (Phase::Stop, FaultName::Stall));
            assert_eq!(stop.pids[&2], pid);
            assert_eq!(stop.rules, ["iptables -F riptide"]);
            assert_eq!(stop.error, None);
        });
        assert!(node_connects(1, 2, PORT) && node_connects(2, 3, PORT));
        assert!(stall.firewall().unwrap().rules().is_empty());
        assert!(
            stall.heal_all().is_empty(),
            "the stop left something in place"
        );
    });
}

#[test]
fn with_overlap_a_stall_stops_the_rolling_faults_in_its_way_instead_of_being_redrawn() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let stall = nemesis(sb, &supervisor, "stall:50", true);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cut = partition(PartitionKind::One, &[1, 2, 3], &mut rng, None).unwrap();
        stall.start(Plan::Partition(cut)).unwrap();

        let events = stall.start_next().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        let (stop, start) = (&events[0], &events[1]);
        assert_eq!((stop.f, stop.fault), (Phase::Stop, FaultName::Partition));
        assert!(
            stop.note.as_deref().unwrap_or("").contains("stopped early"),
            "{stop:?}"
        );
        assert_eq!((start.f, start.fault), (Phase::Start, FaultName::Stall));
        assert_eq!(start.nodes, [2]);
        // Only the stall's own cut is in place.
        assert_eq!(stall.firewall().unwrap().rules().len(), 4);
        assert_eq!(stall.active_plans().len(), 1);
        let stop = stall.stop_active().unwrap();
        assert_eq!(stop.fault, FaultName::Stall);
        assert!(stall.heal_all().is_empty());
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Running);
    });
}
