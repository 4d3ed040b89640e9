//! Leader election (Raft paper §5.2, §5.4.1; thesis §9.6 for pre-vote).
//!
//! A follower that hears nothing from a leader for its randomised election timeout first asks for
//! *pre-votes* in the term it would use, without changing anybody's term. Only with a majority of
//! pre-votes does it become a candidate: term + 1, vote for itself (durably), ask for real votes.
//! A vote is granted at most once per term, and only to a candidate whose log is at least as up to
//! date as the voter's (last term first, then length), which guarantees the winner holds every
//! committed entry.

use super::membership::VoteOutcome;
use super::message::Body;
use super::node::{Raft, RoleState};
use crate::types::{Index, NodeId, Term};

impl Raft {
    /// Starts an election (or a pre-vote round).
    pub(super) fn campaign(&mut self, pre_vote: bool) {
        self.campaign_with(pre_vote, false);
    }

    /// Starts an election; `leader_transfer` marks one the leader asked for with TimeoutNow.
    /// Vote requests go to the voters of every configuration in force.
    pub(super) fn campaign_with(&mut self, pre_vote: bool, leader_transfer: bool) {
        self.become_candidate(pre_vote);
        let term = if pre_vote { self.term + 1 } else { self.term };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let me = self.config.id;
        let m = self.membership();
        let mut voters = m.voters.clone();
        voters.extend(m.outgoing.iter().filter(|id| !m.voters.contains(id)));
        voters.sort_unstable();
        for peer in voters.into_iter().filter(|&id| id != me) {
            self.outbox.push(super::message::Message {
                from: me,
                to: peer,
                term,
                body: Body::RequestVote {
                    last_log_index,
                    last_log_term,
                    pre_vote,
                    leader_transfer,
                },
            });
        }
        self.maybe_win(pre_vote);
    }

    pub(super) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let log_ok = self.config.unsafe_vote_any_log
            || self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = if pre_vote {
            // Would we vote for `from` in `term`? Only if that term is newer than ours.
            term > self.term && log_ok
        } else {
            // The term gate made `term == self.term`.
            let free =
                self.voted_for == Some(from) || (self.voted_for.is_none() && self.leader.is_none());
            free && log_ok
        };
        tracing::debug!(from, term, pre_vote, granted, log_ok, "vote request");
        if granted && !pre_vote {
            self.set_term(self.term, Some(from));
            self.reset_election_timer();
        }
        // A granted pre-vote answers in the requested term so the pre-candidate can count it; a
        // refusal carries ours.
        let reply_term = if pre_vote && granted { term } else { self.term };
        self.outbox.push(super::message::Message {
            from: self.config.id,
            to: from,
            term: reply_term,
            body: Body::RequestVoteResponse { granted, pre_vote },
        });
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
    ) {
        let (votes, expected_term) = match &mut self.role {
            RoleState::PreCandidate { granted, rejected } if pre_vote => {
                ((granted, rejected), self.term + 1)
            }
            RoleState::Candidate { granted, rejected } if !pre_vote => {
                ((granted, rejected), self.term)
            }
            _ => return, // a late answer to an election that is over
        };
        if granted {
            if term != expected_term {
                return;
            }
            votes.0.insert(from);
        } else {
            votes.1.insert(from);
        }
        self.maybe_win(pre_vote);
    }

    /// Counts votes: a majority wins (or moves a pre-candidate on to a real election); a majority of
    /// refusals ends the attempt.
    /// Only voters' answers count, in every configuration in force (see [`super::membership`]).
    fn maybe_win(&mut self, pre_vote: bool) {
        let outcome = match &self.role {
            RoleState::PreCandidate { granted, rejected }
            | RoleState::Candidate { granted, rejected } => {
                self.vote_outcome(|id| granted.contains(&id), |id| rejected.contains(&id))
            }
            _ => return,
        };
        match outcome {
            VoteOutcome::Won if pre_vote => self.campaign(false),
            VoteOutcome::Won => self.become_leader(),
            VoteOutcome::Lost => self.become_follower(self.term, None),
            VoteOutcome::Pending => {}
        }
    }
}
