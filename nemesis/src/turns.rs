//! The nemesis loop, as part of [`super::Nemesis`]: how faults take turns, or roll with
//! `overlap`, and which fault comes next.
//!
//! # The membership lane
//!
//! With `overlap`, a spec that mixes membership changes with other faults runs the changes in a
//! lane of their own, as an operator's replacements come on their own cadence whatever else
//! fails: every interval the lane starts a change (if none is in place) or stops the one in
//! place, while the process and network faults roll beside it as before. The lane draws from a
//! schedule of its own ([`crate::Schedule::split_membership`]), so its changes never depend on
//! the other draws. Without the lane, membership took one start in three of a rolling loop that
//! has room for about three starts a minute: one change a run, too few for the aimed changes
//! below to come up in a short campaign.
//!
//! The lane runs on a thread of its own, with waits of its own ([`Waits::lane`]). A change asks
//! the cluster and waits for it: a stranded start for its leader and its far side, a replacement's
//! stop for the voters to come back (up to a minute), a grow for a learner that never catches up.
//! On one thread with the rolling faults, those waits were theirs too: in a zoo of 60 s runs the
//! lane's turns took about 680 of 2,400 seconds, and a 60 s run saw only 7 to 12 rolling starts.
//! Now a slow change holds back only the lane.
//!
//! # Aimed changes take the field
//!
//! The membership changes that aim at a window (`stranded`, `disjoint`: [`Plan::takes_the_field`])
//! build their own partition around the leader, and they need the whole cluster for it: every
//! voter running, a leader elected, no other cut in place. With `overlap` the loop would
//! otherwise meet them in one of two ways: redrawn, because a partition holds the network class
//! they need; or started and skipped at once, because a kill or a pause holds the leader. In a
//! mixed schedule (`membership,kill,partition --nemesis-overlap`) that was most of them, and
//! they are what catches the membership bugs. So when one comes up it is not redrawn: the
//! faults in place are stopped first, each with its own stop event (noted as stopped early),
//! and the change then waits for a leader. It runs alone: the rolling faults skip their turns
//! while it is in place, and come back when the lane stops it. (A kill during its window would
//! hide the two leaders it is there to show.) Across the two threads this is the field: a
//! rolling turn holds it for the whole turn, and so does the lane's turn that starts or stops
//! an aimed change, so the change never starts beside a rolling start half done, and its stop's
//! heal (which flushes the run's chain) never wipes a partition a rolling turn has just made.
//! Each turn hands its events on while it still holds the field, so the history never shows an
//! early stop before the start it stops. Started by hand ([`Nemesis::start_next`] on a spec
//! without the lane), it leaves room for a process fault on top of it.
//!
//! # A stall clears the leader
//!
//! A `stall` ([`crate::stall`]) and a `stale-candidate` ([`crate::nemesis::stale_candidate`]) hold both
//! rolling classes, process and network, so with
//! `overlap` it would fit only in the rare interval with nothing in place, and would hardly ever
//! start. When one comes up it is not redrawn either: the rolling faults in its way are stopped
//! first (each noted as stopped early), as for an aimed change, but the membership lane's
//! change, a slow-apply and a reorder stay (none of them clashes with it).

use std::sync::mpsc;
use std::time::Duration;

use super::{Nemesis, NemesisEvent, Shutdown};
use crate::error::{Error, Result};
use crate::schedule::Plan;
use crate::spec::Family;
use crate::waits::Waits;

/// How many times the overlapping loop redraws a plan whose class is already in place before it
/// gives up for this turn (and stops the oldest fault instead). The draws stay a pure function of
/// the seed. (With a deck, a card that does not fit is passed over and kept, not redrawn.)
const OVERLAP_REDRAWS: usize = 8;

/// How long an aimed change waits for a leader to be known (after the faults it stopped, or a
/// kill of the leader: one election).
pub(super) const LEADER_WAIT: Duration = Duration::from_secs(3);

impl Nemesis {
    /// The loop: every `interval`, start the next fault or stop the active one, reporting each to
    /// `record`. Returns when `shutdown` is triggered, after stopping the active faults.
    ///
    /// With `overlap`, faults roll instead of taking turns: every interval either a fault starts
    /// (if fewer than two are in place) or the oldest stops, so that after the first interval
    /// two faults of different classes ([`crate::Class`]: process, network, membership) are
    /// usually in place together, each for two intervals, staggered by one. Compound faults are
    /// where many real bugs live: a partition that leaves some nodes behind, then the leader
    /// killed, then the partition healed before the leader returns, makes the stale nodes stand
    /// for election. An aimed membership change takes the field (see the module docs).
    pub fn run(&self, shutdown: &Shutdown, record: &mut dyn FnMut(NemesisEvent)) {
        if self.config.overlap {
            return self.run_overlapping(shutdown, record);
        }
        let mut waits = self.waits();
        while !shutdown.wait(waits.next_wait()) {
            match self.start_next() {
                Ok(events) => events.into_iter().for_each(&mut *record),
                Err(e) => tracing::warn!("nemesis: {e}"),
            }
            if shutdown.wait(waits.next_wait()) {
                break;
            }
            if let Some(event) = self.stop_active() {
                record(event);
            }
        }
        if let Some(event) = self.stop_active() {
            record(event);
        }
    }

    fn waits(&self) -> Waits {
        Waits::new(self.config.seed, self.config.interval, self.config.jitter)
    }

    fn run_overlapping(&self, shutdown: &Shutdown, record: &mut dyn FnMut(NemesisEvent)) {
        if self.lock().lane.is_some() {
            self.run_with_lane(shutdown, record);
        } else {
            let mut waits = self.waits();
            while !shutdown.wait(waits.next_wait()) {
                self.rolling_turn(&mut *record);
            }
        }
        while let Some(event) = self.stop_active() {
            record(event);
        }
    }

    /// The overlapping loop with a membership lane: the lane and the rolling faults each on a
    /// thread of their own, on their own waits, their events recorded here as they come.
    fn run_with_lane(&self, shutdown: &Shutdown, record: &mut dyn FnMut(NemesisEvent)) {
        let (events, received) = mpsc::channel();
        std::thread::scope(|scope| {
            let lane_events = events.clone();
            let mut lane_waits =
                Waits::lane(self.config.seed, self.config.interval, self.config.jitter);
            let lane = move || {
                while !shutdown.wait(lane_waits.next_wait()) {
                    self.lane_turn(&mut |event| {
                        let _ = lane_events.send(event);
                    });
                }
            };
            let mut waits = self.waits();
            let rolling = move || {
                while !shutdown.wait(waits.next_wait()) {
                    self.rolling_turn(&mut |event| {
                        let _ = events.send(event);
                    });
                }
            };
            let spawn = |name: &str| std::thread::Builder::new().name(name.into());
            spawn("riptide-lane")
                .spawn_scoped(scope, lane)
                .expect("spawn the membership lane's thread");
            spawn("riptide-rolling")
                .spawn_scoped(scope, rolling)
                .expect("spawn the rolling faults' thread");
            // Ends when both threads have returned (and dropped their senders).
            received.iter().for_each(record);
        });
    }

    /// One interval of the overlapping loop on one thread, its events in the order they
    /// happened: the membership lane's turn (if the spec has one), then the rolling faults'
    /// turn, which waits for the next interval when the lane has just started an aimed change.
    /// ([`Nemesis::run`] runs the two turns on two threads instead.)
    pub fn roll(&self) -> Vec<NemesisEvent> {
        let mut events = Vec::new();
        if self.lock().lane.is_some() && self.lane_turn(&mut |event| events.push(event)) {
            return events;
        }
        self.rolling_turn(&mut |event| events.push(event));
        events
    }

    /// One interval of the rolling faults: a start if fewer than two are in place (the
    /// membership lane's change not counted), else, or if none fits, the oldest stopped; nothing
    /// while the lane's aimed change is in place. Each event goes to `emit` while the turn still
    /// holds the field, so an aimed change's stops are never recorded before these.
    fn rolling_turn(&self, emit: &mut dyn FnMut(NemesisEvent)) {
        let _field = self.hold_field();
        let lane = self.lock().lane.is_some();
        let in_place = self.active_plans();
        if lane && in_place.iter().any(Plan::takes_the_field) {
            return;
        }
        let rolling = |plan: &Plan| !lane || plan.family() != Family::Membership;
        let started = if in_place.iter().filter(|p| rolling(p)).count() < 2 {
            self.start_next().unwrap_or_else(|e| {
                tracing::warn!("nemesis: {e}");
                Vec::new()
            })
        } else {
            Vec::new()
        };
        if started.is_empty() {
            self.stop_first(rolling).into_iter().for_each(emit);
        } else {
            started.into_iter().for_each(emit);
        }
    }

    /// One interval of the membership lane: the change in place stopped, or the lane's next one
    /// started (after the faults an aimed change stops). The start or stop of an aimed change
    /// holds the field, so no rolling turn runs beside it. True if it drew an aimed change.
    fn lane_turn(&self, emit: &mut dyn FnMut(NemesisEvent)) -> bool {
        let is_change = |plan: &Plan| plan.family() == Family::Membership;
        if let Some(change) = self.active_plans().into_iter().find(is_change) {
            let _field = change.takes_the_field().then(|| self.hold_field());
            self.stop_first(is_change).into_iter().for_each(emit);
            return false;
        }
        let plan = {
            let mut state = self.lock();
            let members = state.members.clone();
            state.lane.as_mut().and_then(|lane| {
                lane.set_nodes(&members);
                lane.next_plan()
            })
        };
        let Some(plan) = plan else {
            return false;
        };
        let aimed = plan.takes_the_field();
        let _field = aimed.then(|| self.hold_field());
        match self.start_drawn(plan) {
            Ok(events) => events.into_iter().for_each(emit),
            Err(e) => tracing::warn!("nemesis: {e}"),
        }
        aimed
    }

    /// Starts the schedule's next fault (the leader asked from the cluster view if it matters).
    /// Returns the events in the order they happened: the stops of the faults an aimed change
    /// cleared out of its way (see the module docs), then the start. Empty if the spec is empty,
    /// or, with `overlap`, if no fault of a class not yet in place came up in a few draws.
    pub fn start_next(&self) -> Result<Vec<NemesisEvent>> {
        match self.draw_next()? {
            Some(plan) => self.start_drawn(plan),
            None => Ok(Vec::new()),
        }
    }

    /// Starts a plan the schedule (or the lane) drew: the faults in its way stopped first if it
    /// takes the field, the live leader swapped in if it matters.
    fn start_drawn(&self, plan: Plan) -> Result<Vec<NemesisEvent>> {
        let mut events = Vec::new();
        if let Plan::Membership { change, .. } = &plan {
            if plan.takes_the_field() {
                while let Some(mut stop) = self.stop_active() {
                    stop.add_note(format!(
                        "stopped early: the {change} change needs the whole cluster"
                    ));
                    events.push(stop);
                }
            }
        }
        if plan.clears_the_leader() {
            while let Some(mut stop) = self.stop_first(|p| p.clashes_with(&plan)) {
                stop.add_note(format!(
                    "stopped early: a {} needs the leader and the links to itself",
                    plan.family()
                ));
                events.push(stop);
            }
        }
        match self.start_with_leader(plan) {
            Ok(event) => events.push(event),
            // The stops happened: they are returned to be recorded, the failed start logged.
            Err(e) if !events.is_empty() => tracing::warn!("nemesis: {e}"),
            Err(e) => return Err(e),
        }
        Ok(events)
    }

    /// Starts the plan with the live leader swapped in if its nodes depend on who leads.
    fn start_with_leader(&self, plan: Plan) -> Result<NemesisEvent> {
        if !plan.needs_leader() {
            return self.start(plan);
        }
        let members = self.members();
        let leader = self.view.leader().filter(|l| members.contains(l));
        let spares_the_leader = matches!(plan, Plan::SlowApply { .. });
        let mut event = self.start(plan.with_leader(leader, &members))?;
        if leader.is_none() && !spares_the_leader {
            event.note = Some("no leader known: a random node stood in".to_string());
        }
        Ok(event)
    }

    /// The next plan to start: any, with nothing in place; without `overlap`, an error while a
    /// fault is in place; with it, the first of a few draws that does not clash with the faults
    /// in place (or takes the field).
    fn draw_next(&self) -> Result<Option<Plan>> {
        let mut state = self.lock();
        let members = state.members.clone();
        state.schedule.set_nodes(&members);
        match (state.active.first(), self.config.overlap) {
            (None, _) => Ok(state.schedule.next_plan()),
            (Some(active), false) => Err(Error::FaultActive {
                new: "new".to_string(),
                active: active.plan.family().to_string(),
            }),
            (Some(_), true) => {
                let in_place: Vec<Plan> = state.active.iter().map(|a| a.plan.clone()).collect();
                // One aimed change at a time: a second would cut the first short.
                let aimed_in_place = in_place.iter().any(Plan::takes_the_field);
                let fits = |plan: &Plan| {
                    ((plan.takes_the_field() || plan.clears_the_leader()) && !aimed_in_place)
                        || !in_place.iter().any(|p| p.clashes_with(plan))
                };
                Ok(state.schedule.next_plan_fitting(&fits, OVERLAP_REDRAWS))
            }
        }
    }

    /// The leader, waited for up to [`LEADER_WAIT`].
    pub(super) fn await_leader(&self) -> Option<crate::NodeId> {
        let deadline = std::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = self.view.leader();
            if leader.is_some() || std::time::Instant::now() >= deadline {
                return leader;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
