//! The bug zoo's two executor bugs, scripted on three real executors (`server::executor`) with
//! in-memory disks and a hand-driven network: `read-before-apply` answers a confirmed read
//! before the state machine has reached its read index, `answer-by-index` answers a write from
//! whatever entry applied at its index. Each scenario runs with the correct executor and with
//! the bug, and shows the difference a client sees.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use riptide_node::kv::KvStore;
use riptide_node::protocol::{
    AdminOp, ClientOp, ClientRequest, ClientResponse, ClientResult, Reply, WriteOp,
};
use riptide_node::raft::{Body, Config, InstallRequest, Message, Raft, RaftLog, SnapshotImage};
use riptide_node::server::executor::{Clients, Executor, Network, SnapshotProgress, Storage};
use riptide_node::server::UnsafeBug;
use riptide_node::types::{Entry, HardState, NodeId, SnapshotMeta};

/// A disk that keeps everything (no crash here) and never snapshots.
#[derive(Default)]
struct Disk {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl Storage for Disk {
    fn save_hard_state(&mut self, hard_state: &HardState) -> anyhow::Result<()> {
        self.hard_state = *hard_state;
        Ok(())
    }
    fn write_entries(&mut self, entries: &[Entry]) -> anyhow::Result<()> {
        let first = entries[0].index as usize;
        self.entries.truncate(first - 1);
        self.entries.extend_from_slice(entries);
        Ok(())
    }
    fn sync(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn begin_snapshot(&mut self, _: SnapshotMeta, _: KvStore) -> anyhow::Result<()> {
        anyhow::bail!("these tests take no snapshots")
    }
    fn poll_snapshot(&mut self, _: bool) -> anyhow::Result<SnapshotProgress> {
        Ok(SnapshotProgress::Abandoned)
    }
    fn write_snapshot_chunk(&mut self, _: u64, _: &[u8]) -> anyhow::Result<()> {
        anyhow::bail!("these tests send no snapshots")
    }
    fn install_snapshot(
        &mut self,
        _: &InstallRequest,
    ) -> anyhow::Result<Result<(SnapshotImage, KvStore), String>> {
        anyhow::bail!("these tests send no snapshots")
    }
}

#[derive(Default)]
struct Outbox(Vec<Message>);

impl Network for Outbox {
    fn send(&mut self, msg: Message) {
        self.0.push(msg);
    }
}

/// Answers, by request id.
#[derive(Default)]
struct Answers(BTreeMap<u64, ClientResult>);

impl Clients for Answers {
    type Reply = u64;
    fn answer(&mut self, id: u64, response: ClientResponse) {
        self.0.insert(id, response.result);
    }
}

type Node = Executor<Disk, Outbox, Answers>;

/// Three executors, a FIFO network, and nodes cut off from it.
struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    wire: VecDeque<Message>,
    cut: BTreeSet<NodeId>,
}

impl Cluster {
    fn new(bugs: &[UnsafeBug], apply_per_tick: Option<u32>) -> Cluster {
        let ids = vec![1, 2, 3];
        let addrs: BTreeMap<NodeId, String> = ids.iter().map(|&n| (n, format!("n{n}"))).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, ids.clone());
                (config.pre_vote, config.check_quorum) = (false, false);
                config.apply_per_tick = apply_per_tick;
                UnsafeBug::configure(bugs, &mut config);
                let log = RaftLog::recovered(0, 0, Vec::new());
                let raft = Raft::new(config, HardState::default(), log).unwrap();
                let node = Executor::new(
                    raft,
                    Disk::default(),
                    Outbox::default(),
                    Answers::default(),
                    addrs.clone(),
                    bugs,
                );
                (id, node)
            })
            .collect();
        Cluster {
            nodes,
            wire: VecDeque::new(),
            cut: BTreeSet::new(),
        }
    }

    /// Carries out `id`'s Ready and puts what it sent on the wire (a cut node's is lost).
    fn ready(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.process_ready().unwrap();
        let sent = std::mem::take(&mut node.network_mut().0);
        let cut = &self.cut;
        let kept = sent
            .into_iter()
            .filter(|m| !cut.contains(&m.from) && !cut.contains(&m.to));
        self.wire.extend(kept);
    }

    /// Delivers until the wire is quiet.
    fn deliver_all(&mut self) {
        while let Some(msg) = self.wire.pop_front() {
            if self.cut.contains(&msg.to) || self.cut.contains(&msg.from) {
                continue;
            }
            let to = msg.to;
            self.nodes.get_mut(&to).unwrap().step(msg);
            self.ready(to);
        }
    }

    fn tick(&mut self, id: NodeId, times: usize) {
        for _ in 0..times {
            self.nodes.get_mut(&id).unwrap().tick();
            self.ready(id);
            self.deliver_all();
        }
    }

    /// Ticks only `id` until it leads (the others, never timing out, vote for it).
    fn elect(&mut self, id: NodeId) {
        for _ in 0..100 {
            if self.nodes[&id].raft().is_leader() {
                return;
            }
            self.tick(id, 1);
        }
        panic!("node {id} did not become leader");
    }

    fn request(&mut self, id: NodeId, request_id: u64, op: ClientOp) {
        let request = ClientRequest {
            id: request_id,
            client_id: request_id,
            seq: 1,
            op,
        };
        self.nodes
            .get_mut(&id)
            .unwrap()
            .on_client(request, request_id);
        self.ready(id);
    }

    fn put(&mut self, id: NodeId, request_id: u64, key: &str, value: &str) {
        let op = WriteOp::Put {
            key: key.into(),
            value: value.into(),
        };
        self.request(id, request_id, ClientOp::Write(op));
    }

    fn answer(&mut self, id: NodeId, request_id: u64) -> Option<ClientResult> {
        let node = self.nodes.get_mut(&id).unwrap();
        node.clients_mut().0.get(&request_id).cloned()
    }
}

fn value(v: &str) -> ClientResult {
    ClientResult::Ok(Reply::Value(Some(v.to_string())))
}

/// Node 1 commits and acknowledges x=1 then x=2, and is cut off before the followers learn that
/// they committed. Node 2 leads next, with a state machine that applies one entry per tick: its
/// no-op commits x=1 and x=2 at once, but it has applied only x=1 when a read of x is confirmed.
/// Returns the cluster at that point, and the read's request id.
fn read_on_a_new_leader_with_a_lagging_state_machine(bugs: &[UnsafeBug]) -> (Cluster, u64) {
    let mut c = Cluster::new(bugs, Some(1));
    c.elect(1);
    c.tick(1, 1);
    c.put(1, 1, "x", "1");
    c.put(1, 2, "x", "2");
    c.deliver_all();
    c.cut.insert(1);
    c.tick(1, 3);
    assert_eq!(c.answer(1, 2), Some(ClientResult::Ok(Reply::Done)));
    c.elect(2);
    c.deliver_all();
    let log = c.nodes[&2].raft().log();
    assert_eq!((log.commit_index(), log.applied_index()), (4, 2));
    c.request(2, 3, ClientOp::Get { key: "x".into() });
    c.deliver_all();
    (c, 3)
}

#[test]
fn a_confirmed_read_waits_for_the_state_machine() {
    let (mut c, read) = read_on_a_new_leader_with_a_lagging_state_machine(&[]);
    assert_eq!(c.answer(2, read), None, "applied 2 < read index 4");
    c.tick(2, 3);
    assert_eq!(c.answer(2, read), Some(value("2")));
}

#[test]
fn read_before_apply_answers_below_the_read_index_a_stale_value() {
    let bugs = [UnsafeBug::ReadBeforeApply];
    let (mut c, read) = read_on_a_new_leader_with_a_lagging_state_machine(&bugs);
    assert_eq!(c.nodes[&2].raft().log().applied_index(), 2);
    // x=2 was acknowledged before the read began: "1" is a stale read.
    assert_eq!(c.answer(2, read), Some(value("1")));
}

/// The same read on a cluster with no apply budget, where node 2's state machine is slowed by
/// the `slow-apply` admin hook instead (1 s: 100 ticks): x=1 applied before the delay, x=2
/// acknowledged by node 1 after it. Node 2 then leads with x=2 committed but held back.
fn read_on_a_new_leader_with_a_slowed_state_machine(bugs: &[UnsafeBug]) -> (Cluster, u64) {
    let mut c = Cluster::new(bugs, None);
    c.elect(1);
    c.put(1, 1, "x", "1");
    c.deliver_all();
    // A heartbeat tells node 2 that x=1 committed.
    for _ in 0..20 {
        if c.nodes[&2].raft().log().applied_index() == 2 {
            break;
        }
        c.tick(1, 1);
    }
    assert_eq!(c.nodes[&2].kv().get("x"), Some("1".to_string()));
    let slow = ClientOp::Admin(AdminOp::SlowApply { delay_ms: 1_000 });
    c.request(2, 2, slow);
    assert!(
        matches!(c.answer(2, 2), Some(ClientResult::Admin(_))),
        "answered at once"
    );
    assert_eq!(c.nodes[&2].raft().apply_delay(), 100);
    c.put(1, 3, "x", "2");
    c.deliver_all();
    c.tick(1, 1);
    assert_eq!(c.answer(1, 3), Some(ClientResult::Ok(Reply::Done)));
    c.cut.insert(1);
    c.elect(2);
    c.deliver_all();
    let log = c.nodes[&2].raft().log();
    assert!(
        log.commit_index() > 3,
        "x=2 (index 3) is committed on node 2"
    );
    assert_eq!(log.applied_index(), 2, "but only x=1 is applied");
    c.request(2, 4, ClientOp::Get { key: "x".into() });
    c.deliver_all();
    (c, 4)
}

#[test]
fn under_slow_apply_a_confirmed_read_waits_for_the_delay() {
    let (mut c, read) = read_on_a_new_leader_with_a_slowed_state_machine(&[]);
    assert_eq!(c.answer(2, read), None, "x=2 is held back");
    c.tick(2, 100);
    assert_eq!(c.answer(2, read), Some(value("2")));
}

#[test]
fn under_slow_apply_read_before_apply_answers_a_stale_value() {
    let bugs = [UnsafeBug::ReadBeforeApply];
    let (mut c, read) = read_on_a_new_leader_with_a_slowed_state_machine(&bugs);
    assert_eq!(
        c.answer(2, read),
        Some(value("1")),
        "x=2 was acknowledged: stale"
    );
    // Turned off, the delay releases what it held at once.
    let fast = ClientOp::Admin(AdminOp::SlowApply { delay_ms: 0 });
    c.request(2, 5, fast);
    c.tick(2, 1);
    assert_eq!(c.nodes[&2].kv().get("x"), Some("2".to_string()));
}

/// Node 1 leads term 1 and, cut off, appends y=1 (index 3) and y=2 (index 4), whose clients
/// wait. Node 2 leads term 2 and commits its no-op (index 3) and z=9 (index 4).
fn leader_cut_off_with_pending_writes(bugs: &[UnsafeBug]) -> Cluster {
    let mut c = Cluster::new(bugs, None);
    c.elect(1);
    c.put(1, 1, "a", "1");
    c.deliver_all();
    c.cut.insert(1);
    c.put(1, 2, "y", "1");
    c.put(1, 3, "y", "2");
    c.elect(2);
    c.put(2, 4, "z", "9");
    c.deliver_all();
    c
}

/// Node 1 leads term 1 and, cut off, appends y=1 (index 3) and y=2 (index 4). Node 2 leads term 2
/// and commits its no-op (index 3) and z=9 (index 4). Healed, node 1 takes node 2's entries
/// and applies them in the same Ready, while its clients still wait for indexes 3 and 4.
fn writes_overwritten_by_a_new_leader(bugs: &[UnsafeBug]) -> Cluster {
    let mut c = leader_cut_off_with_pending_writes(bugs);
    assert_eq!(c.answer(2, 4), Some(ClientResult::Ok(Reply::Done)));
    c.cut.clear();
    c.tick(2, 5);
    assert_eq!(c.nodes[&1].raft().log().applied_index(), 4);
    assert_eq!(c.nodes[&1].kv().get("y"), None, "y was never written");
    c
}

#[test]
fn a_write_whose_entry_was_replaced_is_indeterminate() {
    let mut c = writes_overwritten_by_a_new_leader(&[]);
    for id in [2, 3] {
        let answer = c.answer(1, id);
        assert!(
            matches!(answer, Some(ClientResult::Indeterminate { .. })),
            "request {id}: {answer:?}"
        );
    }
}

#[test]
fn answer_by_index_acknowledges_a_write_that_never_applied() {
    let mut c = writes_overwritten_by_a_new_leader(&[UnsafeBug::AnswerByIndex]);
    // Request 3 (y=2) is told Ok from z=9's result at index 4: a lost write.
    assert_eq!(c.answer(1, 3), Some(ClientResult::Ok(Reply::Done)));
}

/// Node 1, cut off with y=1 and y=2 pending, learns of term 2 from a heartbeat whose prevIndex
/// is past its log's end: it steps down before any of its entries is replaced.
/// Returns the cluster at that point.
fn deposed_before_its_entries_are_replaced(bugs: &[UnsafeBug]) -> Cluster {
    let mut c = leader_cut_off_with_pending_writes(bugs);
    c.cut.clear();
    let heartbeat = Message {
        from: 2,
        to: 1,
        term: c.nodes[&2].raft().term(),
        body: Body::AppendEntries {
            prev_index: 10,
            prev_term: 2,
            entries: Vec::new(),
            commit: 4,
            read_round: 0,
        },
    };
    c.nodes.get_mut(&1).unwrap().step(heartbeat);
    c.ready(1);
    c.wire.clear();
    assert!(!c.nodes[&1].raft().is_leader(), "node 1 stepped down");
    assert_eq!(
        c.nodes[&1].raft().log().applied_index(),
        2,
        "nothing replaced yet"
    );
    c
}

#[test]
fn a_deposed_leader_gives_up_its_pending_writes_at_once() {
    let mut c = deposed_before_its_entries_are_replaced(&[]);
    let answer = c.answer(1, 3);
    assert!(
        matches!(answer, Some(ClientResult::Indeterminate { .. })),
        "{answer:?}"
    );
}

#[test]
fn answer_by_index_keeps_waiting_after_a_step_down_and_answers_ok_from_another_entry() {
    let mut c = deposed_before_its_entries_are_replaced(&[UnsafeBug::AnswerByIndex]);
    assert_eq!(c.answer(1, 3), None, "still waiting for index 4");
    c.tick(2, 5);
    assert_eq!(c.nodes[&1].raft().log().applied_index(), 4);
    assert_eq!(c.nodes[&1].kv().get("y"), None, "y was never written");
    assert_eq!(c.answer(1, 3), Some(ClientResult::Ok(Reply::Done)));
}
