//! Tunables of the Raft core. Time is counted in ticks; the server decides how long a tick is.

use std::collections::BTreeMap;

use crate::types::{Membership, NodeId};

/// How a leader serves linearizable reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// A round of heartbeats confirms each batch of reads (thesis §6.4): no clock assumptions.
    #[default]
    ReadIndex,
    /// The leader answers from its own state while it holds a lease (thesis §6.4.1, see
    /// [`super::lease`]): no round trip, but safe only while clocks drift less than
    /// `lease_drift` ticks over a lease. Needs check-quorum.
    Lease,
}

impl std::str::FromStr for ReadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read-index" => Ok(ReadMode::ReadIndex),
            "lease" => Ok(ReadMode::Lease),
            _ => Err(format!("unknown read mode `{s}`; one of read-index, lease")),
        }
    }
}

impl std::fmt::Display for ReadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadMode::ReadIndex => "read-index",
            ReadMode::Lease => "lease",
        })
    }
}

/// How a node behaves. `Config::new` gives the defaults described on each field.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// Every voting member, including this node.
    pub voters: Vec<NodeId>,
    /// The addresses of the initial members (the command line's peer list), which the initial
    /// configuration carries; ids that are not among `voters` are left out. Default empty. A
    /// node restarting from a snapshot or a log with configuration entries uses the addresses
    /// those carry instead.
    pub addresses: BTreeMap<NodeId, String>,
    /// Election timeout is drawn uniformly from `[min, max)` ticks each time it is reset, so that
    /// split votes resolve quickly (paper §5.2). Default 15..30 ticks = 150–300 ms at 10 ms a tick,
    /// the range the paper suggests.
    pub election_timeout_min: u32,
    pub election_timeout_max: u32,
    /// A leader sends AppendEntries (heartbeats if there is nothing new) at least this often.
    /// Default 5 ticks = 50 ms: well under the minimum election timeout, so a few lost heartbeats
    /// do not trigger an election.
    pub heartbeat_interval: u32,
    /// At most this many entries in one AppendEntries. Default 512: batches amortise per-message
    /// cost while keeping a single message far below the frame limit.
    pub max_batch_entries: usize,
    /// At most about this many payload bytes in one AppendEntries. Default 1 MiB (frame limit 16 MiB).
    pub max_batch_bytes: usize,
    /// How many AppendEntries may be outstanding to one follower before the leader waits for an
    /// answer (pipelining). Default 64.
    pub max_inflight: usize,
    /// About how many payload bytes may be outstanding to one follower (the window may overshoot
    /// by one batch). Default 4 MiB: half of what a peer link queues before it drops messages
    /// (`server::raft_loop::PEER_QUEUE_BYTES`), so that large values slow the leader down
    /// instead of overflowing the link; by count alone, 64 batches of 1 MiB could be in flight.
    pub max_inflight_bytes: usize,
    /// At most this many bytes of snapshot image in one InstallSnapshot message. Default 1 MiB:
    /// a large state moves in many small frames (the frame limit is 16 MiB), one chunk in flight
    /// per follower.
    pub max_snapshot_chunk: usize,
    /// Ask for pre-votes before a real election (thesis §9.6). Default on.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down, and a
    /// follower that heard from a live leader within the minimum election timeout ignores vote
    /// requests (thesis §6.2 and §4.2.3). Default on.
    pub check_quorum: bool,
    /// How reads are served. Default ReadIndex.
    pub read_mode: ReadMode,
    /// With lease reads, the lease ends this many ticks before the minimum election timeout,
    /// for clock drift. Default 3 ticks (20% of the default minimum timeout).
    pub lease_drift: u32,
    /// At most this many committed entries handed to the state machine per tick, or None (the
    /// default): all of them in the next Ready. A bound models a state machine that applies
    /// behind the commit index, as an asynchronous one does (the simulation uses it to show
    /// that reads wait for applying).
    pub apply_per_tick: Option<u32>,
    /// A learner is promoted to voter only if its log is at most this many entries behind the
    /// leader's last index. Default 100: a promoted voter that is far behind would hold up
    /// commits (it counts in the new majority) until it catches up.
    pub promote_lag_entries: u64,
    /// Seed of the election-timeout randomness (mixed with the node id).
    pub seed: u64,
    /// TEST ONLY: grant votes without checking that the candidate's log is up to date. Breaks the
    /// election restriction (paper §5.4.1) so that riptide can prove it finds lost writes.
    pub unsafe_vote_any_log: bool,
    /// TEST ONLY: further deliberate bugs of the core, all off by default.
    pub bugs: CoreBugs,
}

/// TEST ONLY: deliberate bugs of the core, to prove that riptide catches them. What each breaks,
/// and where it comes from, is documented on `UnsafeBug` (`riptide-node --help`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreBugs {
    /// Commit an earlier term's entry by counting replicas (Figure 8).
    pub commit_prior_term: bool,
    /// Forget the vote of the current term on restart.
    pub forget_vote: bool,
    /// Serve ReadIndex before the leader committed an entry of its term.
    pub read_index_early: bool,
    /// Lease reads with a lease longer than the election timeout (and, as the server's bug
    /// sets it up, without check-quorum).
    pub lease_too_long: bool,
    /// A follower truncates after prevIndex even when the entries match.
    pub truncate_on_match: bool,
    /// A follower commits up to the leader's commit index, past what the message vouched for.
    pub commit_past_match: bool,
    /// A quorum of n/2 instead of n/2 + 1.
    pub quorum_off_by_one: bool,
    /// Election timeouts are not randomised.
    pub fixed_election_timeout: bool,
    /// A single-server change goes from C_old to C_new directly, without the joint phase, and
    /// the leader accepts it before it has committed an entry of its own term (the 2015 bug).
    pub single_server_change_unsafe: bool,
    /// During C_old,new a decision counts only the new configuration's majority.
    pub joint_one_majority: bool,
}

impl Config {
    /// The defaults for a node in a cluster of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            addresses: BTreeMap::new(),
            election_timeout_min: 15,
            election_timeout_max: 30,
            heartbeat_interval: 5,
            max_batch_entries: 512,
            max_batch_bytes: 1024 * 1024,
            max_inflight: 64,
            max_inflight_bytes: 4 * 1024 * 1024,
            max_snapshot_chunk: 1024 * 1024,
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            lease_drift: 3,
            apply_per_tick: None,
            promote_lag_entries: 100,
            seed: 0,
            unsafe_vote_any_log: false,
            bugs: CoreBugs::default(),
        }
    }

    /// Checks that the configuration makes sense, this node among the initial voters; the error
    /// says which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.voters.contains(&self.id) {
            return Err(format!(
                "node {} is not among the voters {:?}",
                self.id, self.voters
            ));
        }
        self.validate_tunables()
    }

    /// Checks the tunables only: a node that restarts from a log or snapshot whose configuration
    /// leaves it out (a learner, a removed node) may not be among the initial voters.
    pub fn validate_tunables(&self) -> Result<(), String> {
        if self.voters.is_empty() {
            return Err("the initial configuration has no voters".into());
        }
        if let Some((id, address)) = self
            .addresses
            .iter()
            .find(|(_, a)| !super::change::valid_address(a))
        {
            return Err(format!(
                "the address {address:?} of node {id} must be 1 to {} bytes without whitespace or control characters",
                super::change::MAX_ADDRESS_BYTES
            ));
        }
        if self.election_timeout_min == 0 || self.election_timeout_max <= self.election_timeout_min
        {
            return Err(format!(
                "election timeout range {}..{} ticks is empty; max must exceed min > 0",
                self.election_timeout_min, self.election_timeout_max
            ));
        }
        if self.heartbeat_interval == 0 || self.heartbeat_interval >= self.election_timeout_min {
            return Err(format!(
                "heartbeat interval {} ticks must be > 0 and below the minimum election timeout {}",
                self.heartbeat_interval, self.election_timeout_min
            ));
        }
        if self.read_mode == ReadMode::Lease && !self.check_quorum && !self.bugs.lease_too_long {
            return Err(
                "lease reads need check-quorum: without it followers vote during a lease".into(),
            );
        }
        if self.read_mode == ReadMode::Lease && self.lease_drift >= self.election_timeout_min {
            return Err(format!(
                "the lease drift margin {} ticks leaves no lease below the minimum election timeout {}",
                self.lease_drift, self.election_timeout_min
            ));
        }
        if self.max_batch_entries == 0 || self.max_inflight == 0 || self.max_snapshot_chunk == 0 {
            return Err(
                "max_batch_entries, max_inflight and max_snapshot_chunk must be at least 1".into(),
            );
        }
        if self.max_batch_bytes == 0 || self.max_inflight_bytes == 0 {
            return Err("max_batch_bytes and max_inflight_bytes must be at least 1".into());
        }
        // A batch (or chunk) of the bound must still fit in one frame with its framing.
        let frame = crate::protocol::MAX_FRAME_BYTES;
        if self.max_batch_bytes > frame / 2 || self.max_snapshot_chunk > frame / 2 {
            return Err(format!(
                "max_batch_bytes {} and max_snapshot_chunk {} must be at most half the {frame}-byte frame limit",
                self.max_batch_bytes, self.max_snapshot_chunk
            ));
        }
        Ok(())
    }

    /// How long a lease lasts, in ticks from when the confirming heartbeat round started: the
    /// minimum election timeout less the drift margin (with the lease-read-unsafe bug, twice
    /// the maximum election timeout: longer than any election takes).
    pub fn lease_ticks(&self) -> u32 {
        if self.bugs.lease_too_long {
            return 2 * self.election_timeout_max;
        }
        self.election_timeout_min - self.lease_drift
    }

    /// The initial configuration: `voters`, with the `addresses` of those among them.
    pub fn initial_membership(&self) -> Membership {
        let mut m = Membership::new(&self.voters);
        m.addresses = self.addresses.clone();
        m.retain_member_addresses();
        m
    }

    /// Votes needed to win an election or commit in the initial configuration: a strict majority
    /// of voters (the bug: a lone node of three is a "majority"). The core counts majorities of
    /// the configuration in force, see [`super::membership`].
    pub fn quorum(&self) -> usize {
        super::membership::majority(self.voters.len(), self.bugs.quorum_off_by_one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_bounds_are_validated() {
        let defaults = Config::new(1, vec![1, 2, 3]);
        assert_eq!(defaults.validate(), Ok(()));
        let mut c = defaults.clone();
        c.max_inflight_bytes = 0;
        assert!(c.validate().unwrap_err().contains("max_inflight_bytes"));
        let mut c = defaults.clone();
        c.max_batch_bytes = 0;
        assert!(c.validate().unwrap_err().contains("max_batch_bytes"));
        let mut c = defaults.clone();
        c.max_batch_bytes = crate::protocol::MAX_FRAME_BYTES;
        assert!(c.validate().unwrap_err().contains("frame limit"));
        let mut c = defaults;
        c.max_snapshot_chunk = crate::protocol::MAX_FRAME_BYTES / 2 + 1;
        assert!(c.validate().unwrap_err().contains("frame limit"));
    }
}
