//! The Raft core under a hostile peer: node 1 of {1, 2, 3} gets any sequence of messages that a
//! peer which passed the gate could send (any term, any body, entries with any indexes, terms
//! and payloads, snapshot chunks of any offset and length), interleaved with ticks, proposals,
//! reads and elections, and carries out every `Ready` as the server does (persisting what it is
//! asked to, failing installs). It must never panic, its term never decreases, and its commit
//! index never passes the end of its log.

use arbitrary::Unstructured;
use riptide_node::raft::{AppendResult, Body, Config, Message, Raft, RaftLog, SnapshotResult};
use riptide_node::types::{Entry, HardState, Payload, SnapshotMeta};

use super::small_or_any;
use crate::Target;

pub const TARGET: Target = Target {
    name: "raft",
    run,
    seeds,
};

/// The AppendEntries a leader sends first.
pub fn sample_append() -> Message {
    Message {
        from: 2,
        to: 1,
        term: 1,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                term: 1,
                index: 1,
                payload: Payload::Noop,
            }],
            commit: 1,
            read_round: 0,
        },
    }
}

fn run(input: &[u8]) -> String {
    let mut u = Unstructured::new(input);
    let mut config = Config::new(1, vec![1, 2, 3]);
    config.pre_vote = u.arbitrary().unwrap_or(false);
    config.check_quorum = u.arbitrary().unwrap_or(false);
    config.max_snapshot_chunk = 16;
    let log = RaftLog::recovered(0, 0, Vec::new());
    let mut raft = Raft::new(config, HardState::default(), log).expect("a valid config");
    let mut seen = std::collections::BTreeSet::new();
    let mut term = raft.term();
    let mut last_new = "start";
    for _ in 0..256 {
        if u.is_empty() {
            break;
        }
        let action = match u.int_in_range(0u8..=9).unwrap_or(0) {
            0 => {
                raft.tick();
                "tick"
            }
            1 => {
                let _ = raft.propose(u.arbitrary::<Vec<u8>>().unwrap_or_default());
                "propose"
            }
            2 => {
                let _ = raft.read_index(small_or_any(&mut u, 4));
                "read"
            }
            3 => {
                raft.campaign_now();
                "campaign"
            }
            _ => {
                let msg = message(&mut u);
                let kind = msg.body.kind();
                raft.step(msg);
                kind
            }
        };
        carry_out(&mut raft);
        assert!(
            raft.term() >= term,
            "the term went back from {term} to {}",
            raft.term()
        );
        term = raft.term();
        let log = raft.log();
        assert!(
            log.commit_index() <= log.last_index(),
            "commit {} is past the log's end {}",
            log.commit_index(),
            log.last_index()
        );
        if seen.insert(format!("{:?}", raft.role())) {
            last_new = action;
        }
    }
    let seen: Vec<String> = seen.into_iter().collect();
    let term_class = match raft.term() {
        0 => "0",
        1..=9 => "small",
        _ => "large",
    };
    format!(
        "roles {} (last new after {last_new}), commit {}, term {term_class}, violation {}",
        seen.join(" "),
        super::bucket(raft.log().commit_index() as usize),
        raft.safety_violation().is_some()
    )
}

/// What the server does with a `Ready`: persist, send (here: drop), apply, fail any install.
fn carry_out(raft: &mut Raft) {
    for _ in 0..8 {
        let ready = raft.ready();
        if ready.is_empty() {
            return;
        }
        if let Some(last) = ready.entries.last() {
            raft.persisted(last.index);
        }
        if ready.install.is_some() {
            raft.install_finished(Err("the fuzz harness refuses installs".into()));
        }
    }
}

fn entries(u: &mut Unstructured<'_>, prev_index: u64) -> Vec<Entry> {
    let n = u.int_in_range(0usize..=4).unwrap_or(0);
    let contiguous = u.int_in_range(0u8..=7).unwrap_or(0) != 0;
    (0..n as u64)
        .map(|k| Entry {
            index: if contiguous {
                prev_index.wrapping_add(1 + k)
            } else {
                small_or_any(u, 8)
            },
            term: small_or_any(u, 6),
            payload: match u.arbitrary::<Option<Vec<u8>>>().unwrap_or(None) {
                None => Payload::Noop,
                Some(bytes) => Payload::Command(bytes),
            },
        })
        .collect()
}

fn message(u: &mut Unstructured<'_>) -> Message {
    let from = if u.ratio(1, 16).unwrap_or(false) {
        small_or_any(u, 4)
    } else {
        u.int_in_range(2..=3).unwrap_or(2)
    };
    let term = small_or_any(u, 6);
    let body = match u.int_in_range(0u8..=5).unwrap_or(0) {
        0 => Body::RequestVote {
            last_log_index: small_or_any(u, 8),
            last_log_term: small_or_any(u, 6),
            pre_vote: u.arbitrary().unwrap_or(false),
            leader_transfer: u.arbitrary().unwrap_or(false),
        },
        1 => Body::RequestVoteResponse {
            granted: u.arbitrary().unwrap_or(true),
            pre_vote: u.arbitrary().unwrap_or(false),
        },
        2 => {
            let prev_index = small_or_any(u, 8);
            Body::AppendEntries {
                prev_index,
                prev_term: small_or_any(u, 6),
                entries: entries(u, prev_index),
                commit: small_or_any(u, 10),
                read_round: small_or_any(u, 4),
            }
        }
        3 => Body::AppendEntriesResponse {
            result: if u.arbitrary().unwrap_or(true) {
                AppendResult::Success {
                    match_index: small_or_any(u, 8),
                }
            } else {
                AppendResult::Reject {
                    rejected_prev: small_or_any(u, 8),
                    conflict_term: u.arbitrary::<Option<u8>>().unwrap_or(None).map(u64::from),
                    conflict_index: small_or_any(u, 8),
                }
            },
            read_round: small_or_any(u, 4),
        },
        4 => Body::InstallSnapshot {
            meta: SnapshotMeta {
                last_index: small_or_any(u, 10),
                last_term: small_or_any(u, 6),
                voters: if u.arbitrary().unwrap_or(true) {
                    vec![1, 2, 3]
                } else {
                    u.arbitrary().unwrap_or_default()
                },
                ..SnapshotMeta::default()
            },
            offset: small_or_any(u, 64),
            data: u.arbitrary().unwrap_or_default(),
            total_len: small_or_any(u, 64),
            checksum: u.arbitrary().unwrap_or(0),
            read_round: small_or_any(u, 4),
        },
        _ => Body::InstallSnapshotResponse {
            snapshot_index: small_or_any(u, 10),
            result: if u.arbitrary().unwrap_or(true) {
                SnapshotResult::Continue {
                    next_offset: small_or_any(u, 64),
                }
            } else {
                SnapshotResult::Done {
                    match_index: small_or_any(u, 10),
                }
            },
            read_round: small_or_any(u, 4),
        },
    };
    Message {
        from,
        to: 1,
        term,
        body,
    }
}

fn seeds() -> Vec<Vec<u8>> {
    // Bytes that steer `run` through a vote, a leader's first append, and a commit.
    vec![
        vec![
            0, 0, 5, 2, 1, 0, 0, 0, 5, 2, 1, 2, 0, 0, 1, 1, 1, 0, 0, 0, 9, 0,
        ],
        vec![1, 1, 3, 5, 3, 1, 1, 0, 0, 5, 3, 1, 1, 0, 0, 0, 0, 0, 0],
        (0..200u8).collect(),
    ]
}
