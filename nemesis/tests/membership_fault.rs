//! The membership fault on stand-in nodes, with a scripted [`Operator`] that keeps the
//! configuration in memory the way a leader would: every start and stop of grow, shrink and
//! replace; fresh ids; removed nodes killed for good and wiped; other faults drawn from the
//! members of the moment; the planned voters restored by `heal_all`; refusals recorded; the
//! `stranded` change's partition (real iptables rules in the test's namespace), asked of the
//! leader alone, healed at its stop.
//!
//! (The same fault against real riptide nodes runs in the root crate's
//! `tests/membership_nemesis.rs`.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{echo_node, isolated, node_connects, track};
use riptide_nemesis::{
    Change, ChangeAnswer, ChangeOutcome, ClusterView, Configuration, FaultName, Grudge,
    MemberChange, Nemesis, NemesisConfig, NemesisEvent, NodeSpec, NodeState, Operator, Phase, Plan,
    Sandbox, Shutdown, Supervisor, Target,
};

const PORT: u16 = 7400;

/// A leader in memory: applies every change at once, unless told to refuse.
struct Scripted {
    dir: std::path::PathBuf,
    config: Mutex<Configuration>,
    asked: Mutex<Vec<MemberChange>>,
    wiped: Mutex<Vec<u64>>,
    /// Refuse every change from now on, with this reason.
    refuse: Mutex<Option<String>>,
    /// The node the cluster view names as leader.
    leader: Arc<Mutex<Option<u64>>>,
    /// The changes asked of one node alone, and the answer the leader gives them: `None`
    /// carries them out, `Some(why)` answers that the outcome is unknown.
    asked_at: Mutex<Vec<(u64, MemberChange)>>,
    stranded_unknown: Mutex<Option<String>>,
    /// With `stranded_unknown`: the change stays in flight (every other change refused) until
    /// [`Scripted::commit_pending`], as C_old,new on a stranded leader's side until the heal.
    pending: Mutex<Option<MemberChange>>,
    hold_unknown: Mutex<bool>,
    /// How long every change request takes to answer (an operator waiting on a slow cluster).
    slow: Mutex<Duration>,
}

/// The cluster view: names the leader the scripted operator has.
struct Leader(Arc<Mutex<Option<u64>>>);

impl ClusterView for Leader {
    fn leader(&self) -> Option<u64> {
        *self.0.lock().unwrap()
    }
}

impl Scripted {
    fn new(dir: &std::path::Path, voters: &[u64]) -> Arc<Scripted> {
        Arc::new(Scripted {
            dir: dir.to_path_buf(),
            config: Mutex::new(Configuration {
                voters: voters.to_vec(),
                learners: Vec::new(),
            }),
            asked: Mutex::new(Vec::new()),
            wiped: Mutex::new(Vec::new()),
            refuse: Mutex::new(None),
            leader: Arc::new(Mutex::new(voters.first().copied())),
            asked_at: Mutex::new(Vec::new()),
            stranded_unknown: Mutex::new(None),
            pending: Mutex::new(None),
            hold_unknown: Mutex::new(false),
            slow: Mutex::new(Duration::ZERO),
        })
    }

    /// The change held in flight commits (a node of the healed near side won an election).
    fn commit_pending(&self) {
        let change = self
            .pending
            .lock()
            .unwrap()
            .take()
            .expect("a change in flight");
        self.apply(change);
    }

    fn voters(&self) -> Vec<u64> {
        self.config.lock().unwrap().voters.clone()
    }
}

impl Operator for Scripted {
    fn joining_node(&self, id: u64, members: &[u64]) -> Result<NodeSpec, String> {
        assert!(!members.contains(&id), "a new node's id is fresh");
        Ok(echo_node(id, PORT, &self.dir))
    }

    fn change(&self, change: MemberChange) -> ChangeAnswer {
        std::thread::sleep(*self.slow.lock().unwrap());
        self.asked.lock().unwrap().push(change);
        if let Some(why) = self.refuse.lock().unwrap().clone() {
            return ChangeAnswer::Refused(why);
        }
        if self.pending.lock().unwrap().is_some() {
            return ChangeAnswer::Refused("a configuration change is in flight".into());
        }
        self.apply(change)
    }

    fn change_at(&self, at: u64, change: MemberChange, _timeout: Duration) -> ChangeAnswer {
        std::thread::sleep(*self.slow.lock().unwrap());
        self.asked_at.lock().unwrap().push((at, change));
        if *self.leader.lock().unwrap() != Some(at) {
            return ChangeAnswer::Refused(format!("node {at} is not the leader"));
        }
        if let Some(why) = self.stranded_unknown.lock().unwrap().clone() {
            if *self.hold_unknown.lock().unwrap() {
                *self.pending.lock().unwrap() = Some(change);
            }
            return ChangeAnswer::Unknown(why);
        }
        self.change(change)
    }

    fn configuration(&self) -> Option<Configuration> {
        Some(self.config.lock().unwrap().clone())
    }

    fn wipe(&self, id: u64) -> Result<(), String> {
        self.wiped.lock().unwrap().push(id);
        Ok(())
    }
}

impl Scripted {
    /// Carries `change` out on the configuration.
    fn apply(&self, change: MemberChange) -> ChangeAnswer {
        let mut c = self.config.lock().unwrap();
        match change {
            MemberChange::AddLearner(id) => c.learners.push(id),
            MemberChange::Promote(id) => {
                c.learners.retain(|&l| l != id);
                c.voters.push(id);
            }
            MemberChange::Remove(id) => {
                c.learners.retain(|&l| l != id);
                c.voters.retain(|&v| v != id);
            }
            MemberChange::Replace { add, remove } => {
                c.learners.retain(|&l| l != add);
                c.voters.retain(|&v| v != remove);
                c.voters.push(add);
            }
        }
        c.voters.sort_unstable();
        ChangeAnswer::Done {
            voters: c.voters.clone(),
        }
    }
}

fn nemesis(
    sb: &Sandbox,
    supervisor: &Arc<Supervisor>,
    spec: &str,
    operator: Arc<Scripted>,
) -> Nemesis {
    let config = NemesisConfig {
        seed: 5,
        spec: spec.parse().unwrap(),
        interval: Duration::from_millis(50),
        overlap: true,
        jitter: 0.0,
        deck: false,
    };
    let view = Arc::new(Leader(operator.leader.clone()));
    Nemesis::new(config, supervisor.clone(), Some(common::firewall(sb)), view)
        .unwrap()
        .with_operator(operator)
}

fn membership(plan_change: Change, draw: u64) -> Plan {
    Plan::Membership {
        change: plan_change,
        draw,
        stop_draw: draw + 1,
    }
}

#[test]
fn every_change_starts_and_stops_back_to_the_planned_count_with_fresh_ids_and_wiped_nodes() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3, 4, 5]);
        let nemesis = nemesis(sb, &supervisor, "membership", operator.clone());

        // Shrink: draw 2 picks n3 among 1..=5; it keeps running until the stop.
        let start = nemesis.start(membership(Change::Shrink, 2)).unwrap();
        let record = start.membership.clone().unwrap();
        assert_eq!(
            (record.removed, record.outcome),
            (Some(3), ChangeOutcome::Done)
        );
        assert_eq!(nemesis.members(), [1, 2, 4, 5]);
        assert_eq!(supervisor.status(3).unwrap().state, NodeState::Running);
        let stop = nemesis.stop_active().unwrap();
        let record = stop.membership.clone().unwrap();
        assert_eq!((record.wiped.clone(), record.added), (vec![3], Some(6)));
        track(stop.pids[&6]);
        assert_eq!(supervisor.status(3).unwrap().state, NodeState::Removed);
        assert_eq!(nemesis.members(), [1, 2, 4, 5, 6]);
        assert_eq!(operator.voters(), [1, 2, 4, 5, 6]);

        // Replace: n7 joins as a learner and is swapped in for the drawn voter in one change.
        let start = nemesis.start(membership(Change::Replace, 0)).unwrap();
        track(start.pids[&7]);
        let record = start.membership.clone().unwrap();
        assert_eq!((record.added, record.removed), (Some(7), Some(1)));
        let asked = operator.asked.lock().unwrap().clone();
        assert_eq!(
            asked[asked.len() - 2..],
            [
                MemberChange::AddLearner(7),
                MemberChange::Replace { add: 7, remove: 1 }
            ]
        );
        let stop = nemesis.stop_active().unwrap();
        assert_eq!(stop.membership.unwrap().wiped, [1]);
        assert_eq!(nemesis.members(), [2, 4, 5, 6, 7]);

        // Grow: n8 joins and is promoted; the stop removes the voter its draw picks, at once.
        let start = nemesis.start(membership(Change::Grow, 0)).unwrap();
        track(start.pids[&8]);
        assert_eq!(nemesis.members(), [2, 4, 5, 6, 7, 8]);
        let stop = nemesis.stop_active().unwrap();
        let record = stop.membership.unwrap();
        assert_eq!((record.removed, record.wiped), (Some(4), vec![4]));
        assert_eq!(nemesis.members(), [2, 5, 6, 7, 8]);
        assert_eq!(*operator.wiped.lock().unwrap(), [3, 1, 4]);
        for gone in [1, 3, 4] {
            assert_eq!(supervisor.status(gone).unwrap().state, NodeState::Removed);
        }

        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

#[test]
fn other_faults_draw_from_the_members_of_the_moment() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        let nemesis = nemesis(sb, &supervisor, "kill,pause", operator.clone());
        let start = nemesis.start(membership(Change::Replace, 0)).unwrap();
        track(start.pids[&4]);
        let _ = nemesis.stop_active(); // n1 wiped
        assert_eq!(nemesis.members(), [2, 3, 4]);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let event = nemesis.start_next().unwrap().pop().unwrap();
            seen.extend(event.nodes.iter().copied());
            let stop = nemesis.stop_active().unwrap();
            stop.pids.values().for_each(|&p| {
                track(p);
            });
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [2, 3, 4]);
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

#[test]
fn a_kill_of_a_node_removed_meanwhile_is_not_undone_and_heal_restores_the_planned_voters() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3, 4, 5]);
        let nemesis = nemesis(sb, &supervisor, "membership,kill", operator.clone());

        let kill = nemesis
            .start(Plan::Kill {
                target: Target::One,
                nodes: vec![2],
            })
            .unwrap();
        assert_eq!(kill.nodes, [2]);
        // The dead node is the one replaced (as operators replace a failed machine).
        let start = nemesis.start(membership(Change::Replace, 1)).unwrap();
        track(start.pids[&6]);
        assert_eq!(start.membership.unwrap().removed, Some(2));
        let stop = nemesis.stop_active().unwrap(); // the kill: n2 is not restarted
        assert!(
            stop.note.unwrap().contains("n2 removed"),
            "{:?}",
            stop.error
        );
        let stop = nemesis.stop_active().unwrap(); // the replace: n2 wiped
        assert_eq!(stop.membership.unwrap().wiped, [2]);
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Removed);

        // A shrink left in place at the end: heal_all stops it (which grows back) and then
        // finds the planned five.
        let start = nemesis.start(membership(Change::Shrink, 0)).unwrap();
        assert_eq!(start.membership.unwrap().removed, Some(1));
        // And a learner the leader has but nobody promoted: removed by the restore.
        operator.config.lock().unwrap().learners.push(42);
        let events = nemesis.heal_all();
        for event in &events {
            event.pids.values().for_each(|&p| {
                track(p);
            });
        }
        let restore = events.last().unwrap();
        assert_eq!(restore.f, Phase::Stop);
        assert!(restore
            .note
            .as_deref()
            .unwrap()
            .contains("planned 5 voters"));
        assert_eq!(operator.voters().len(), 5);
        assert!(operator.config.lock().unwrap().learners.is_empty());
        assert!(operator
            .asked
            .lock()
            .unwrap()
            .contains(&MemberChange::Remove(42)));
        supervisor.shutdown();
    });
}

#[test]
fn a_refused_change_is_recorded_and_leaves_the_members_as_they_were() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        let nemesis = nemesis(sb, &supervisor, "membership", operator.clone());
        *operator.refuse.lock().unwrap() = Some("a change is already in flight".into());

        let start = nemesis.start(membership(Change::Grow, 0)).unwrap();
        let record = start.membership.clone().unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Refused);
        assert!(record.reason.unwrap().contains("already in flight"));
        assert_eq!(record.added, Some(4));
        track(start.pids[&4]);
        // The new node never got in: it is killed and wiped again, not left running.
        assert_eq!(supervisor.status(4).unwrap().state, NodeState::Removed);
        assert_eq!(*operator.wiped.lock().unwrap(), [4]);
        assert_eq!(nemesis.members(), [1, 2, 3]);
        let value = start.value();
        assert_eq!(value["outcome"], "refused");
        assert_eq!(value["fault"], "membership");
        // The grow never happened, so its stop removes nobody.
        let stop = nemesis.stop_active().unwrap();
        let record = stop.membership.unwrap();
        assert_eq!(
            (record.outcome, record.removed),
            (ChangeOutcome::Skipped, None)
        );
        assert_eq!(
            operator.asked.lock().unwrap().len(),
            1,
            "only the refused add"
        );
        *operator.refuse.lock().unwrap() = None;
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

#[test]
fn stranded_cuts_the_leader_off_with_c_news_majority_asks_it_alone_and_heals_at_the_stop() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3, 4, 5]);
        *operator.leader.lock().unwrap() = Some(2);
        let nemesis = nemesis(sb, &supervisor, "membership:stranded", operator.clone());

        let start = nemesis.start(membership(Change::Stranded, 9)).unwrap();
        track(start.pids[&6]);
        let record = start.membership.clone().unwrap();
        assert_eq!(
            (record.added, record.outcome),
            (Some(6), ChangeOutcome::Done)
        );
        let victim = record.removed.unwrap();
        // Leader n2, one companion and n6 (C_new's majority, one short of C_old's) against
        // the other three voters, the victim among them.
        let [near, far] = [start.groups[0].clone(), start.groups[1].clone()];
        assert_eq!((near.len(), far.len()), (3, 3), "{:?}", start.groups);
        assert!(near.contains(&2) && near.contains(&6) && far.contains(&victim));
        assert_eq!(start.rules.len(), 2 * 3 * 3, "{:?}", start.rules);
        let asked = operator.asked_at.lock().unwrap().clone();
        assert_eq!(
            asked,
            [(
                2,
                MemberChange::Replace {
                    add: 6,
                    remove: victim
                }
            )]
        );
        assert!(start
            .note
            .as_deref()
            .unwrap()
            .contains("leader n2 stranded"));
        // Recorded when done: it began before the learner's second to catch up, and says so.
        assert!(start.took_ms.unwrap() >= 1000, "{:?}", start.took_ms);
        assert!(!node_connects(2, victim, PORT) && !node_connects(6, far[0], PORT));
        assert!(node_connects(2, 6, PORT));
        assert!(!nemesis.members().contains(&victim) && nemesis.members().contains(&6));

        let stop = nemesis.stop_active().unwrap();
        assert_eq!(stop.rules, ["iptables -F riptide"]);
        assert_eq!(stop.membership.unwrap().wiped, [victim]);
        assert_eq!(supervisor.status(victim).unwrap().state, NodeState::Removed);
        let kept = far.iter().find(|&&n| n != victim).unwrap();
        assert!(node_connects(2, *kept, PORT));
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

#[test]
fn a_stranded_change_a_correct_leader_cannot_commit_removes_the_new_node_again() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        *operator.stranded_unknown.lock().unwrap() = Some("the leader lost its leadership".into());
        let nemesis = nemesis(sb, &supervisor, "membership,partition", operator.clone());

        let start = nemesis.start(membership(Change::Stranded, 0)).unwrap();
        track(start.pids[&4]);
        let record = start.membership.clone().unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Unknown);
        assert!(record.reason.unwrap().contains("lost its leadership"));
        // Three voters: the leader keeps nobody but the new node.
        assert_eq!(start.groups[0], [1, 4]);
        assert_eq!(nemesis.members(), [1, 2, 3]);
        assert!(operator
            .asked
            .lock()
            .unwrap()
            .contains(&MemberChange::Remove(4)));
        assert_eq!(supervisor.status(4).unwrap().state, NodeState::Removed);
        // It holds the network class too: a partition may not start on top of it.
        let loss = Plan::Loss {
            target: Target::One,
            nodes: vec![2],
            probability: 0.2,
            links: Grudge::new(),
        };
        let clash = nemesis.start(loss).unwrap_err().to_string();
        assert!(clash.contains("membership"), "{clash}");
        let stop = nemesis.stop_active().unwrap();
        assert_eq!(stop.rules, ["iptables -F riptide"]);
        assert!(stop.membership.unwrap().wiped.is_empty());
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

/// A stranded change a correct leader could not answer may still commit once the partition
/// heals (the near side holds C_old,new, and one of its nodes wins the next election). The
/// stop reads the configuration again, so that the members know the new node and the next
/// faults aim at the cluster as it is. (Found by `riptide zoo`: the members, and the run's
/// roster, lacked a new node that went on to lead.)
#[test]
fn a_stranded_change_that_commits_after_the_heal_is_in_the_members_after_the_stop() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        *operator.stranded_unknown.lock().unwrap() = Some("timed out".into());
        *operator.hold_unknown.lock().unwrap() = true;
        let nemesis = nemesis(sb, &supervisor, "membership,partition", operator.clone());

        let start = nemesis.start(membership(Change::Stranded, 0)).unwrap();
        track(start.pids[&4]);
        let record = start.membership.clone().unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Unknown);
        let victim = record.removed.unwrap();
        // The new node could not be taken back out while the change was in flight.
        assert_eq!(nemesis.members(), [1, 2, 3]);
        assert_eq!(supervisor.status(4).unwrap().state, NodeState::Running);
        operator.commit_pending();
        let stop = nemesis.stop_active().unwrap();
        let mut expected: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|&v| v != victim).collect();
        expected.sort_unstable();
        assert_eq!(nemesis.members(), expected);
        assert_eq!(stop.membership.unwrap().voters, expected);
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

#[test]
fn a_stranded_change_with_no_leader_starts_no_node() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        *operator.leader.lock().unwrap() = None;
        let nemesis = nemesis(sb, &supervisor, "membership:stranded", operator.clone());
        let start = nemesis.start(membership(Change::Stranded, 0)).unwrap();
        let record = start.membership.unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Skipped);
        assert_eq!(record.reason.as_deref(), Some("no leader known within 3s"));
        assert!(start.rules.is_empty() && start.pids.is_empty());
        assert!(operator.asked.lock().unwrap().is_empty());
        assert_eq!(supervisor.ids(), [1, 2, 3]);
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

/// With four voters the leader's side keeps two and the far side two: no majority anywhere, so
/// the change could show nothing, and its requests would hold the nemesis thread for ~20 s.
#[test]
fn a_stranded_change_with_an_even_number_of_voters_starts_no_node() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(4, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3, 4]);
        let nemesis = nemesis(sb, &supervisor, "membership:stranded", operator.clone());
        let began = std::time::Instant::now();
        let start = nemesis.start(membership(Change::Stranded, 0)).unwrap();
        assert!(began.elapsed() < Duration::from_secs(1), "at once");
        let record = start.membership.unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Skipped);
        let reason = record.reason.unwrap();
        assert!(
            reason.contains("4 voters, an even number") && reason.contains("no leader"),
            "{reason}"
        );
        assert!(start.rules.is_empty() && start.pids.is_empty());
        assert!(operator.asked.lock().unwrap().is_empty());
        assert_eq!(supervisor.ids(), [1, 2, 3, 4]);
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

/// With no leader (every voter paused or powered off), a grow, shrink or replace is skipped at
/// once: asked anyway, its requests and the read-back after them held the nemesis thread, and
/// every other fault of the run, for half a minute.
#[test]
fn a_plain_change_with_no_leader_is_skipped_at_once_and_asks_nothing() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        *operator.leader.lock().unwrap() = None;
        let nemesis = nemesis(sb, &supervisor, "membership", operator.clone());
        for change in [Change::Grow, Change::Shrink, Change::Replace] {
            let began = std::time::Instant::now();
            let start = nemesis.start(membership(change, 0)).unwrap();
            assert!(
                began.elapsed() < Duration::from_secs(1),
                "{change}: at once"
            );
            let record = start.membership.clone().unwrap();
            assert_eq!(record.outcome, ChangeOutcome::Skipped, "{change}");
            assert!(
                record
                    .reason
                    .as_deref()
                    .unwrap()
                    .starts_with("no leader known"),
                "{change}: {:?}",
                record.reason
            );
            assert!(start.pids.is_empty(), "{change}: no node started");
            let _ = nemesis.stop_active();
        }
        assert!(operator.asked.lock().unwrap().is_empty());
        assert_eq!(nemesis.members(), [1, 2, 3]);
        assert_eq!(supervisor.ids(), [1, 2, 3]);
        // With a leader again, the same change goes ahead.
        *operator.leader.lock().unwrap() = Some(1);
        let start = nemesis.start(membership(Change::Shrink, 0)).unwrap();
        assert_eq!(start.membership.unwrap().outcome, ChangeOutcome::Done);
        let _ = nemesis.heal_all();
        supervisor.shutdown();
    });
}

/// With most voters dead for good (say, they refused to start after a power cut), no leader
/// can restore the planned voters: the restore says so at once instead of waiting out its
/// deadline before the final reads.
#[test]
fn the_restore_gives_up_at_once_when_at_most_half_the_voters_run() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(3, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3]);
        let nemesis = nemesis(sb, &supervisor, "membership", operator.clone());
        // After a shrink of n3, n1 dies on its own: one of the two voters runs.
        let start = nemesis.start(membership(Change::Shrink, 2)).unwrap();
        assert_eq!(start.membership.unwrap().outcome, ChangeOutcome::Done);
        assert_eq!(nemesis.members(), [1, 2]);
        let pid = supervisor.status(1).unwrap().pid.unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(200));
        // The shrink's own stop is refused, so two voters are left to restore from.
        *operator.refuse.lock().unwrap() = Some("no leader".to_string());
        let began = std::time::Instant::now();
        let events = nemesis.heal_all();
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        let restore = events.last().expect("a restore event");
        let record = restore.membership.clone().unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Refused, "{record:?}");
        assert_eq!(
            record.reason.as_deref(),
            Some("only 1 of the 2 voters are running: no leader can be elected to restore the planned voters")
        );
        assert!(restore.note.is_none(), "not restored: {:?}", restore.note);
        assert_eq!(operator.voters(), [1, 2]);
        supervisor.shutdown();
    });
}

#[test]
fn an_aimed_change_stops_the_faults_in_its_way_and_runs_alone_in_the_membership_lane() {
    isolated(|sb| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = common::echo_cluster(5, PORT, dir.path());
        let operator = Scripted::new(dir.path(), &[1, 2, 3, 4, 5]);
        *operator.leader.lock().unwrap() = Some(2);
        let nemesis = nemesis(
            sb,
            &supervisor,
            "membership:stranded,kill",
            operator.clone(),
        );
        let killed = supervisor.pid(3).unwrap();
        let kill = Plan::Kill {
            target: Target::One,
            nodes: vec![3],
        };
        nemesis.start(kill).unwrap();
        let loss = Plan::Loss {
            target: Target::One,
            nodes: vec![4],
            probability: 0.5,
            links: Grudge::new(),
        };
        nemesis.start(loss).unwrap();

        // The lane's turn: its stranded change clashes with the loss and needs the leader the
        // kill could hold; both are stopped first, and the rolling faults skip this interval.
        let events = nemesis.roll();
        let faults = faults_of(&events);
        assert_eq!(faults.len(), 3, "{faults:?}");
        for stop in &events[..2] {
            assert_eq!(stop.f, Phase::Stop);
            let note = stop.note.as_deref().unwrap_or_default();
            assert!(
                note.contains("stopped early: the stranded change needs the whole cluster"),
                "{note}"
            );
        }
        let restarted = events[0].pids[&3];
        track(restarted);
        assert_ne!(restarted, killed);
        assert_eq!(supervisor.status(3).unwrap().state, NodeState::Running);
        let start = &events[2];
        assert_eq!(start.f, Phase::Start);
        track(start.pids[&6]);
        let record = start.membership.clone().unwrap();
        assert_eq!(record.outcome, ChangeOutcome::Done, "{:?}", record.reason);
        assert!(matches!(
            nemesis.active_plans()[..],
            [Plan::Membership { .. }]
        ));

        // The next interval: the lane stops its change, and the rolling faults come back.
        let events = nemesis.roll();
        let faults = faults_of(&events);
        assert_eq!(
            faults,
            [
                (FaultName::Membership, Phase::Stop),
                (FaultName::Kill, Phase::Start)
            ]
        );
        events[1].pids.values().for_each(|&p| {
            track(p);
        });
        // And the one after: the lane's next stranded change clears that kill away again.
        let events = nemesis.roll();
        let faults = faults_of(&events);
        assert_eq!(
            faults,
            [
                (FaultName::Kill, Phase::Stop),
                (FaultName::Membership, Phase::Start)
            ]
        );
        for event in events.iter().chain(&nemesis.heal_all()) {
            event.pids.values().for_each(|&p| {
                track(p);
            });
        }
        supervisor.shutdown();
    });
}

/// The real loop for `for_ms` on `spec` (interval 50 ms, with the membership lane), its
/// events as recorded, then the heal's; every pid they name tracked.
fn run_loop(sb: &Sandbox, spec: &str, slow: Duration, for_ms: u64) -> Vec<NemesisEvent> {
    let dir = tempfile::tempdir().unwrap();
    let supervisor = common::echo_cluster(5, PORT, dir.path());
    let operator = Scripted::new(dir.path(), &[1, 2, 3, 4, 5]);
    *operator.slow.lock().unwrap() = slow;
    let nemesis = nemesis(sb, &supervisor, spec, operator.clone());
    let shutdown = Shutdown::new();
    let mut events: Vec<NemesisEvent> = Vec::new();
    std::thread::scope(|s| {
        let runner = s.spawn(|| nemesis.run(&shutdown, &mut |e| events.push(e)));
        std::thread::sleep(Duration::from_millis(for_ms));
        shutdown.trigger();
        runner.join().unwrap();
    });
    events.extend(nemesis.heal_all());
    for event in &events {
        event
            .pids
            .values()
            .chain(event.restarted.values())
            .for_each(|&p| {
                track(p);
            });
    }
    supervisor.shutdown();
    events
}

#[test]
fn a_slow_change_in_the_lane_does_not_hold_back_the_rolling_faults() {
    isolated(|sb| {
        // Every change request takes 1.5 s: on one thread, 2 s would have room for one change
        // and two rolling turns. On its own thread the lane holds back only itself.
        let events = run_loop(
            sb,
            "membership:shrink,pause",
            Duration::from_millis(1500),
            2000,
        );
        let starts = |fault| {
            events
                .iter()
                .filter(|e| e.fault == fault && e.f == Phase::Start)
                .count()
        };
        assert!(
            starts(FaultName::Membership) >= 1,
            "{:?}",
            faults_of(&events)
        );
        let pauses = starts(FaultName::Pause);
        assert!(pauses >= 6, "{pauses} pauses: {:?}", faults_of(&events));
    });
}

#[test]
fn in_the_real_loop_no_rolling_fault_runs_beside_an_aimed_change() {
    isolated(|sb| {
        let events = run_loop(sb, "membership:stranded,pause", Duration::ZERO, 2500);
        let faults = faults_of(&events);
        let aimed = |e: &NemesisEvent| e.fault == FaultName::Membership;
        assert!(
            events.iter().any(|e| aimed(e) && e.f == Phase::Start),
            "{faults:?}"
        );
        let mut aimed_in_place = false;
        let mut paused = false;
        for (fault, phase) in &faults {
            match (fault, phase) {
                (FaultName::Membership, Phase::Start) => {
                    assert!(!paused, "a stranded start beside a pause: {faults:?}");
                    aimed_in_place = true;
                }
                (FaultName::Membership, Phase::Stop) => aimed_in_place = false,
                (FaultName::Pause, Phase::Start) => {
                    assert!(
                        !aimed_in_place,
                        "a pause inside the aimed window: {faults:?}"
                    );
                    assert!(!paused, "two pauses at once: {faults:?}");
                    paused = true;
                }
                (FaultName::Pause, Phase::Stop) => {
                    assert!(paused, "a stop before its start: {faults:?}");
                    paused = false;
                }
                _ => {}
            }
        }
        assert!(
            faults.contains(&(FaultName::Pause, Phase::Start)),
            "the rolling faults ran too: {faults:?}"
        );
    });
}

/// Each event's fault and phase, in order.
fn faults_of(events: &[NemesisEvent]) -> Vec<(FaultName, Phase)> {
    events.iter().map(|e| (e.fault, e.f)).collect()
}
