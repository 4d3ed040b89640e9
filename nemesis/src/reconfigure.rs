//! The membership fault's actions, as part of [`super::Nemesis`]: each start and stop of
//! [`crate::membership`]'s table, carried out through the runner's [`Operator`], and the final
//! restore of the planned voter count before the final reads.
//!
//! The nemesis keeps its own list of the voters (`State::members`), which every fault draws its
//! nodes from. It is set from what the leader answers after each change, and read back from the
//! leader after an answer that leaves the outcome unknown: the list follows the cluster, not the
//! plan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Nemesis;
use crate::event::{FaultName, NemesisEvent, Phase};
use crate::membership::{
    drawn_member, Change, ChangeAnswer, ChangeOutcome, MemberChange, MembershipRecord, Operator,
};
use crate::supervisor::{NodeState, Pid};
use crate::NodeId;

/// Why a grow, shrink or replace is skipped when no node leads (every voter paused, powered
/// off, cut off): its requests would wait out their timeouts and the read-back of the
/// configuration after them, half a minute in which the nemesis thread, and with it every other
/// fault of the run, stood still.
const NO_LEADER: &str =
    "no leader known: a change now would only wait out its timeouts; the next one is drawn at the next interval";

/// How long [`Nemesis::heal_all`] keeps working to bring the voters back to the planned count.
const RESTORE_DEADLINE: Duration = Duration::from_secs(60);

impl Nemesis {
    /// The voters as the nemesis knows them now.
    pub fn members(&self) -> Vec<NodeId> {
        self.lock().members.clone()
    }

    /// A membership start. `removed` gets the voters it removed, which are wiped at the stop
    /// (with the pid they run as, 0 if they were not running).
    pub(super) fn membership_start(
        &self,
        change: Change,
        draw: u64,
        event: &mut NemesisEvent,
        removed: &mut BTreeMap<NodeId, Pid>,
    ) {
        let mut record = MembershipRecord::new(change);
        match self.operator.as_deref() {
            None => record.fail(ChangeOutcome::Skipped, NO_OPERATOR.to_string()),
            // The aimed changes wait for a leader themselves (they stopped the faults in place).
            Some(_) if !change.cuts_links() && self.view.leader().is_none() => {
                record.fail(ChangeOutcome::Skipped, NO_LEADER.to_string())
            }
            Some(operator) => match change {
                Change::Grow => self.grow(operator, &mut record, event),
                Change::Shrink | Change::Replace | Change::Stranded | Change::Disjoint => {
                    let victim = match change {
                        Change::Shrink => self.shrink(operator, draw, &mut record),
                        Change::Replace => self.replace(operator, draw, &mut record, event),
                        Change::Disjoint => self.disjoin(operator, draw, &mut record, event),
                        _ => self.strand(operator, draw, &mut record, event),
                    };
                    if let Some(victim) = victim {
                        removed.insert(victim, self.supervisor.pid(victim).unwrap_or(0));
                    }
                }
            },
        }
        self.finish(record, event);
    }

    /// A membership stop: the voter count back to the planned one (see the module docs of
    /// [`crate::membership`]).
    pub(super) fn membership_stop(
        &self,
        change: Change,
        stop_draw: u64,
        removed: &BTreeMap<NodeId, Pid>,
        event: &mut NemesisEvent,
    ) {
        let mut record = MembershipRecord::new(change);
        let Some(operator) = self.operator.as_deref() else {
            record.fail(ChangeOutcome::Skipped, NO_OPERATOR.to_string());
            return self.finish(record, event);
        };
        if change == Change::Stranded {
            self.unstrand(operator, removed, &mut record, event);
            return self.finish(record, event);
        }
        if change == Change::Disjoint {
            self.undisjoin(operator, removed, &mut record, event);
            return self.finish(record, event);
        }
        for &id in removed.keys() {
            self.wipe(operator, id, &mut record, event);
        }
        // Back to the planned count: a start that did not go through leaves nothing to undo.
        let (now, planned) = (self.members().len(), self.nodes.len());
        match change {
            Change::Grow if now <= planned => {
                record.fail(
                    ChangeOutcome::Skipped,
                    format!("{now} voters: none to remove"),
                );
            }
            Change::Shrink if now >= planned => {
                record.fail(ChangeOutcome::Skipped, format!("{now} voters: none to add"));
            }
            Change::Grow => {
                if let Some(victim) = self.shrink(operator, stop_draw, &mut record) {
                    self.wipe(operator, victim, &mut record, event);
                }
            }
            Change::Shrink => self.grow(operator, &mut record, event),
            Change::Replace | Change::Stranded | Change::Disjoint => {}
        }
        self.finish(record, event);
    }

    /// Why no leader can be asked to restore the voters, if at most half of them run (the
    /// others refused to start after a disk fault, or exited): then no election can succeed, and
    /// waiting out [`RESTORE_DEADLINE`] (and each read-back's own retries) only delays the final
    /// reads by a minute and a half.
    fn no_majority_running(&self) -> Option<String> {
        let members = self.members();
        let running = members
            .iter()
            .filter(|&&id| {
                self.supervisor
                    .status(id)
                    .is_ok_and(|s| s.state == NodeState::Running)
            })
            .count();
        (running * 2 <= members.len()).then(|| {
            format!(
                "only {running} of the {} voters are running: no leader can be elected to restore the planned voters",
                members.len()
            )
        })
    }

    /// After every fault has stopped: learners left over removed, voters added or removed until
    /// their count is the planned one, nodes outside the configuration wiped. `None` if nothing
    /// was to do (or the spec has no membership fault).
    pub fn restore_membership(&self) -> Option<NemesisEvent> {
        let operator = self.operator.as_deref()?;
        if !self.spec_changes_membership() {
            return None;
        }
        let mut event = NemesisEvent::new(Phase::Stop, FaultName::Membership);
        let mut record = MembershipRecord::new(Change::Replace);
        let mut acted = false;
        let began = Instant::now();
        let deadline = began + RESTORE_DEADLINE;
        let planned = self.nodes.len();
        while Instant::now() < deadline {
            if let Some(why) = self.no_majority_running() {
                // As far as the nemesis knows the count is right: nothing to say.
                acted |= self.members().len() != planned;
                record.fail(ChangeOutcome::Refused, why);
                break;
            }
            let Some(config) = operator.configuration() else {
                std::thread::sleep(Duration::from_millis(300));
                continue;
            };
            self.lock().members = config.voters.clone();
            if let Some(&learner) = config.learners.first() {
                acted = true;
                if self.ask(operator, MemberChange::Remove(learner), &mut record) {
                    self.wipe(operator, learner, &mut record, &mut event);
                }
            } else if config.voters.len() < planned {
                acted = true;
                record.change = Change::Grow;
                self.grow(operator, &mut record, &mut event);
            } else if config.voters.len() > planned {
                acted = true;
                record.change = Change::Shrink;
                let newest = config.voters.iter().copied().max().unwrap_or_default();
                if self.ask(operator, MemberChange::Remove(newest), &mut record) {
                    self.wipe(operator, newest, &mut record, &mut event);
                }
            } else {
                acted |= self.wipe_strays(operator, &config.voters, &mut record, &mut event);
                record.outcome = ChangeOutcome::Done;
                record.reason = None;
                break;
            }
            if record.outcome != ChangeOutcome::Done {
                // Try again from what the leader says now; keep the last reason if time runs out.
                std::thread::sleep(Duration::from_millis(300));
                record.outcome = ChangeOutcome::Done;
            }
        }
        if !acted {
            return None;
        }
        if self.members().len() != planned && record.outcome == ChangeOutcome::Done {
            record.fail(
                ChangeOutcome::Refused,
                format!("could not bring the voters back to {planned} within {RESTORE_DEADLINE:?}"),
            );
        }
        if record.outcome == ChangeOutcome::Done {
            event.add_note(format!(
                "the planned {planned} voters restored for the final reads"
            ));
        }
        self.finish(record, &mut event);
        event.took_ms = Some(began.elapsed().as_millis() as u64);
        Some(event)
    }

    fn spec_changes_membership(&self) -> bool {
        self.config
            .spec
            .faults()
            .iter()
            .any(|f| f.family() == crate::spec::Family::Membership)
    }

    /// A new node joins: started empty, added as a learner, promoted once caught up. If it
    /// cannot be promoted it is removed again and wiped.
    pub(super) fn grow(
        &self,
        operator: &dyn Operator,
        record: &mut MembershipRecord,
        ev: &mut NemesisEvent,
    ) {
        let Some(id) = self.join(operator, record, ev) else {
            return;
        };
        if !self.ask(operator, MemberChange::Promote(id), record) {
            self.abandon(operator, id, ev);
        }
    }

    /// A voter drawn among the members is removed. Returns it if it left the configuration.
    fn shrink(
        &self,
        operator: &dyn Operator,
        draw: u64,
        record: &mut MembershipRecord,
    ) -> Option<NodeId> {
        let members = self.members();
        if members.len() <= 2 {
            let why = format!("only {} voters left: none is removed", members.len());
            record.fail(ChangeOutcome::Skipped, why);
            return None;
        }
        let victim = drawn_member(draw, &members)?;
        record.removed = Some(victim);
        self.ask(operator, MemberChange::Remove(victim), record);
        (!self.members().contains(&victim)).then_some(victim)
    }

    /// A new node joins as a learner and is swapped in for a voter drawn among the members.
    /// Returns the voter if it left the configuration.
    fn replace(
        &self,
        operator: &dyn Operator,
        draw: u64,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> Option<NodeId> {
        let victim = drawn_member(draw, &self.members())?;
        record.removed = Some(victim);
        let add = self.join(operator, record, event)?;
        let change = MemberChange::Replace {
            add,
            remove: victim,
        };
        if !self.ask(operator, change, record) {
            self.abandon(operator, add, event);
        }
        (!self.members().contains(&victim)).then_some(victim)
    }

    /// Starts a node with a fresh id and adds it as a learner. Returns its id once it is one.
    pub(super) fn join(
        &self,
        operator: &dyn Operator,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> Option<NodeId> {
        let id = {
            let mut state = self.lock();
            if state.next_id > riptide_proto::MAX_NODE_ID {
                drop(state);
                let why = format!(
                    "no fresh node id left (ids up to {} have addresses)",
                    riptide_proto::MAX_NODE_ID
                );
                record.fail(ChangeOutcome::Skipped, why);
                return None;
            }
            state.next_id += 1;
            state.next_id - 1
        };
        record.added = Some(id);
        let spawned = operator
            .joining_node(id, &self.members())
            .and_then(|spec| self.supervisor.spawn(spec).map_err(|e| e.to_string()));
        match spawned {
            Ok(pid) => {
                event.pids.insert(id, pid);
            }
            Err(why) => {
                record.fail(
                    ChangeOutcome::Skipped,
                    format!("cannot start node {id}: {why}"),
                );
                return None;
            }
        }
        if self.ask(operator, MemberChange::AddLearner(id), record) {
            return Some(id);
        }
        if record.outcome == ChangeOutcome::Refused {
            // Definitely not added (often: no leader while a fault holds a majority): nothing
            // to ask the leader, and no time to lose waiting for one.
            let mut cleanup = MembershipRecord::new(Change::Shrink);
            self.wipe(operator, id, &mut cleanup, event);
            return None;
        }
        let learners = operator.configuration().map(|c| c.learners);
        if learners.is_some_and(|l| l.contains(&id)) {
            return Some(id);
        }
        self.abandon(operator, id, event);
        None
    }

    /// A new node that did not make it to voter: removed (if it got in at all) and wiped.
    pub(super) fn abandon(&self, operator: &dyn Operator, id: NodeId, event: &mut NemesisEvent) {
        let mut cleanup = MembershipRecord::new(Change::Shrink);
        let still_in = operator
            .configuration()
            .is_none_or(|c| c.learners.contains(&id) || c.voters.contains(&id));
        if still_in && !self.ask(operator, MemberChange::Remove(id), &mut cleanup) {
            // Left in the configuration (a learner does not count for majorities): the final
            // restore removes it.
            return;
        }
        self.wipe(operator, id, &mut cleanup, event);
    }

    /// Asks for one change; updates the members from the answer (or, if unknown, from the
    /// leader). True if it was done.
    pub(super) fn ask(
        &self,
        operator: &dyn Operator,
        change: MemberChange,
        rec: &mut MembershipRecord,
    ) -> bool {
        let answer = operator.change(change);
        let done = matches!(answer, ChangeAnswer::Done { .. });
        self.take_answer(operator, change, answer, rec);
        done
    }

    /// The members after `answer` to `change`: from the answer, or if it leaves the outcome
    /// unknown, from the leader. A refusal or an unknown outcome goes into the record.
    pub(super) fn take_answer(
        &self,
        operator: &dyn Operator,
        change: MemberChange,
        answer: ChangeAnswer,
        rec: &mut MembershipRecord,
    ) {
        match answer {
            ChangeAnswer::Done { voters } => self.lock().members = voters,
            ChangeAnswer::Refused(why) => {
                rec.fail(ChangeOutcome::Refused, format!("{change}: refused: {why}"));
            }
            ChangeAnswer::Unknown(why) => {
                rec.fail(
                    ChangeOutcome::Unknown,
                    format!("{change}: unknown outcome: {why}"),
                );
                if let Some(config) = operator.configuration() {
                    self.lock().members = config.voters;
                }
            }
        }
    }

    /// Kills node `id` for good and wipes its data.
    pub(super) fn wipe(
        &self,
        operator: &dyn Operator,
        id: NodeId,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) {
        match self.supervisor.retire(id) {
            Ok(Some(pid)) => {
                event.pids.insert(id, pid);
            }
            Ok(None) => {}
            Err(e) => return event.add_error(e),
        }
        match operator.wipe(id) {
            Ok(()) => record.wiped.push(id),
            Err(why) => event.add_error(format!("cannot wipe node {id}: {why}")),
        }
    }

    /// Wipes every supervised node that is alive but no voter (a removal whose answer was lost
    /// but that took effect). Returns whether there was one.
    fn wipe_strays(
        &self,
        operator: &dyn Operator,
        voters: &[NodeId],
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> bool {
        let strays: Vec<NodeId> = self
            .supervisor
            .statuses()
            .into_iter()
            .filter(|s| s.state != NodeState::Removed && !voters.contains(&s.id))
            .map(|s| s.id)
            .collect();
        for &id in &strays {
            self.wipe(operator, id, record, event);
        }
        !strays.is_empty()
    }

    /// The record into the event, with the voters now.
    fn finish(&self, mut record: MembershipRecord, event: &mut NemesisEvent) {
        record.voters = self.members();
        event.nodes = record
            .added
            .into_iter()
            .chain(record.removed)
            .chain(record.wiped.iter().copied())
            .collect();
        event.nodes.sort_unstable();
        event.nodes.dedup();
        event.membership = Some(record);
    }

    /// Whether node `id` was removed and wiped by the membership fault (and so is not to be
    /// restarted or resumed by the stop of another fault).
    pub(super) fn is_removed(&self, id: NodeId) -> bool {
        self.supervisor
            .status(id)
            .is_ok_and(|s| s.state == NodeState::Removed)
    }
}

const NO_OPERATOR: &str =
    "this nemesis was given no operator (Nemesis::with_operator), so it cannot change membership";
