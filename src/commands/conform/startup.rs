//! The first rules: the nodes start with the bench's flags and listen (`flags`, `listen`),
//! every node answers `Status` sensibly (`status`), and they elect one leader that all of them
//! name (`election`). Every later rule needs these, so a failure here skips the rest.

use std::time::{Duration, Instant};

use riptide_proto::{NodeId, Role, Status};

use super::cluster::Bench;
use super::rules::{self, Findings, Verdict};
use super::{peers, probe, session};

/// The first two rules: flags and listen. False if any node is not up.
pub fn start(bench: &Bench, findings: &mut Findings) -> bool {
    if let Err(e) = bench.plan.start(&bench.supervisor) {
        findings.add(&rules::FLAGS, Verdict::Fail(format!("{e:#}")));
        return false;
    }
    let ids = peers::ids(&bench.nodes());
    match bench.wait_listening(&ids, Duration::from_secs(10)) {
        Ok(()) => {
            let pids: Vec<String> = ids
                .iter()
                .map(|&id| {
                    bench
                        .supervisor
                        .pid(id)
                        .map_or("?".into(), |p| p.to_string())
                })
                .collect();
            let pass = format!(
                "all 3 nodes run with the bench's flags (pids {})",
                pids.join(", ")
            );
            findings.add(&rules::FLAGS, Verdict::Pass(pass));
            findings.add(
                &rules::LISTEN,
                Verdict::Pass("all 3 nodes accept connections on their addresses".into()),
            );
            true
        }
        Err(problems) if ids.iter().any(|&id| bench.ended(id).is_some()) => {
            let how = format!(
                "{}\nthe bench started n1 as: {}",
                problems.join("\n"),
                bench.command_line(1)
            );
            findings.add(&rules::FLAGS, Verdict::Fail(how));
            false
        }
        Err(problems) => {
            findings.add(
                &rules::FLAGS,
                Verdict::Pass("all 3 nodes run with the bench's flags".into()),
            );
            findings.add(&rules::LISTEN, Verdict::Fail(problems.join("\n")));
            false
        }
    }
}

/// How long after listening a node may go on failing to answer Status.
const STATUS_GRACE: Duration = Duration::from_secs(5);

/// Status and election; the leader if both hold.
pub fn elect(bench: &Bench, findings: &mut Findings) -> Option<NodeId> {
    // A node that just bound its address may need a moment before it answers (the bench's own
    // wait for a leader keeps asking too); an answer that is wrong is judged at once.
    let deadline = Instant::now() + STATUS_GRACE;
    let mut poll = probe::Poll::take(&bench.nodes(), bench.timeout);
    while poll.statuses.iter().any(|(_, s)| s.is_err()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        poll = probe::Poll::take(&bench.nodes(), bench.timeout);
    }
    let problems: Vec<String> = poll
        .statuses
        .iter()
        .filter_map(|(id, s)| match s {
            Ok(status) => status_problem(*id, status),
            Err(e) => Some(format!("n{id} ({}): sent {{\"id\":1,\"client_id\":0,\"seq\":0,\"op\":\"Status\"}} on a new client connection, again for {STATUS_GRACE:?}: {e}", bench.addr(*id))),
        })
        .collect();
    let answered = problems.is_empty();
    findings.add(
        &rules::STATUS,
        Verdict::from_problems(
            problems,
            "every node answered Status with its own id and consistent positions",
        ),
    );
    if !answered {
        return None;
    }
    let started = Instant::now();
    match probe::wait_for_leader(&bench.nodes(), bench.timeout, bench.election_timeout) {
        Ok((leader, term)) => {
            let pass = format!(
                "n{leader} leads term {term} and every node names it ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            findings.add(&rules::ELECTION, Verdict::Pass(pass));
            Some(leader)
        }
        Err(poll) => {
            let fail = format!(
                "no leader that every node names within {:?}; last seen: {}",
                bench.election_timeout,
                poll.describe()
            );
            findings.add(&rules::ELECTION, Verdict::Fail(fail));
            None
        }
    }
}

/// What is wrong with node `id`'s status, if anything.
fn status_problem(id: NodeId, s: &Status) -> Option<String> {
    let shown = session::shape(s);
    let problem = if s.id != id {
        format!("it says id {} but was started with --id {id}", s.id)
    } else if s.applied_index > s.commit_index {
        "applied_index is above commit_index (only committed entries may be applied)".into()
    } else if s.commit_index > s.last_log_index {
        "commit_index is above last_log_index".into()
    } else if s.first_log_index > s.last_log_index + 1 {
        "first_log_index is more than last_log_index + 1".into()
    } else if s.role == Role::Leader && s.leader != Some(id) {
        "it says it leads, but its leader field does not name itself".into()
    } else {
        return None;
    };
    Some(format!("n{id}'s status {shown}: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> Status {
        Status {
            id: 2,
            role: Role::Leader,
            term: 3,
            leader: Some(2),
            commit_index: 5,
            applied_index: 5,
            last_log_index: 6,
            first_log_index: 1,
            snapshot: Default::default(),
            refused_peers: 0,
            safety_violation: None,
            membership: Default::default(),
            reorder: Default::default(),
        }
    }

    #[test]
    fn a_sensible_status_has_no_problem() {
        assert_eq!(status_problem(2, &leader()), None);
    }

    #[test]
    fn each_inconsistency_is_named() {
        type Case = (fn(&mut Status), &'static str);
        let cases: [Case; 5] = [
            (|s| s.id = 3, "it says id 3 but was started with --id 2"),
            (
                |s| s.applied_index = 6,
                "applied_index is above commit_index",
            ),
            (
                |s| s.commit_index = 7,
                "commit_index is above last_log_index",
            ),
            (
                |s| s.first_log_index = 8,
                "first_log_index is more than last_log_index + 1",
            ),
            (|s| s.leader = None, "its leader field does not name itself"),
        ];
        for (break_it, named) in cases {
            let mut status = leader();
            break_it(&mut status);
            let problem = status_problem(2, &status).expect("a problem");
            assert!(problem.starts_with("n2's status {\"id\":"), "{problem}");
            assert!(problem.contains(named), "{problem}");
        }
    }
}
