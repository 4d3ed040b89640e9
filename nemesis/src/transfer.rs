//! The transfer-leader fault's action, as part of [`super::Nemesis`]: ask who leads, pick the
//! node the plan's draw names among the others ([`transfer_target`]), and ask the cluster, through
//! the [`super::ClusterView`], to hand leadership over. Nothing is left to undo at the stop.

use super::Nemesis;
use crate::event::{NemesisEvent, Transfer, TransferOutcome};
use crate::schedule::transfer_target;
use crate::NodeId;

/// What a [`super::ClusterView`] says came of a leadership transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferAnswer {
    /// The target leads now.
    Done,
    /// Definitely not done, and why (refused, abandoned, no leader reachable, not supported).
    Refused(String),
    /// May or may not have happened, and why.
    Unknown(String),
}

impl Nemesis {
    /// A transfer-leader start: the leader asked, the target drawn among the other nodes,
    /// the transfer asked for, all recorded in `event` (`from`, `to`, `outcome`, `reason`).
    /// With no leader known, nothing is asked.
    pub(super) fn transfer_leader(&self, draw: u64, event: &mut NemesisEvent) {
        let members = self.members();
        let from = self.view.leader().filter(|l| members.contains(l));
        let to = from.and_then(|from| transfer_target(draw, from, &members));
        let (outcome, reason) = match (from, to) {
            (Some(_), Some(to)) => self.ask_transfer(to),
            (Some(_), None) => (
                TransferOutcome::Refused,
                Some("no other node to hand leadership to".to_string()),
            ),
            (None, _) => (
                TransferOutcome::NoLeader,
                Some("no leader known: nothing to transfer".to_string()),
            ),
        };
        event.nodes = from.into_iter().chain(to).collect();
        event.transfer = Some(Transfer {
            from,
            to,
            outcome,
            reason,
        });
    }

    /// Asks the cluster to hand leadership to `to`; what came of it, and why if not done.
    pub(super) fn ask_transfer(&self, to: NodeId) -> (TransferOutcome, Option<String>) {
        match self.view.transfer_leader(to) {
            TransferAnswer::Done => (TransferOutcome::Done, None),
            TransferAnswer::Refused(why) => (TransferOutcome::Refused, Some(why)),
            TransferAnswer::Unknown(why) => (TransferOutcome::Unknown, Some(why)),
        }
    }
}
