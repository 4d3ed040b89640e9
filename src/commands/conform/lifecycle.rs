//! Stopping and starting: SIGTERM on one node, then SIGKILL on all of them and a restart on
//! their data dirs, after which the cluster must elect again and still hold every write it
//! acknowledged. The bench's own faults are SIGKILL (a power cut); SIGTERM is what people and
//! scripts send, and a node that ignores it outlives whoever started it.

use std::collections::BTreeMap;
use std::time::Duration;

use riptide_nemesis::Termination;
use riptide_proto::{ClientResult, NodeId, Reply, WriteOp};

use super::cluster::Bench;
use super::probe;
use super::requests::{LOG, REGISTER};
use super::rules::{self, Findings, Verdict};
use super::session::{expect, Session};

/// How long a node may take to exit after SIGTERM.
pub const SIGTERM_GRACE: Duration = Duration::from_secs(5);

/// SIGTERM to node `id`; it must exit within [`SIGTERM_GRACE`] (else it is SIGKILLed). The node
/// is restarted afterwards either way.
pub fn sigterm(bench: &Bench, id: NodeId) -> Verdict {
    let pid = bench
        .supervisor
        .pid(id)
        .map_or("?".into(), |p| p.to_string());
    let verdict = match bench.supervisor.terminate(id, SIGTERM_GRACE) {
        Ok(Termination::Exited {
            code,
            signal,
            after,
        }) => {
            let how = match (code, signal) {
                (Some(code), _) => format!("with code {code}"),
                (_, Some(signal)) => format!("on signal {signal}"),
                _ => String::new(),
            };
            Verdict::Pass(format!(
                "n{id} exited {how} {:.2} s after SIGTERM",
                after.as_secs_f64()
            ))
        }
        Ok(Termination::Ignored { grace }) => Verdict::Fail(format!(
            "n{id} (pid {pid}) was still running {grace:?} after SIGTERM; riptide SIGKILLed it"
        )),
        Err(e) => Verdict::Fail(format!("n{id}: {e}")),
    };
    if let Err(e) = bench.restart(id) {
        return Verdict::Fail(format!("{}\n{e}", verdict.detail()));
    }
    verdict
}

/// What the checks had the cluster acknowledge, read back after the restart.
fn acknowledged() -> [(&'static str, &'static str); 2] {
    [(REGISTER, "two"), (LOG, "ab")]
}

/// SIGKILL every node, start them all again on their data dirs, and check that they elect a
/// leader, that no term went back, and that the acknowledged writes are there.
pub fn restart(bench: &Bench, session: &mut Session) -> Verdict {
    let nodes = bench.nodes();
    let before: BTreeMap<NodeId, u64> = probe::Poll::take(&nodes, bench.timeout)
        .statuses
        .into_iter()
        .filter_map(|(id, s)| s.ok().map(|s| (id, s.term)))
        .collect();
    for &(id, _) in &nodes {
        if let Err(e) = bench.supervisor.kill(id) {
            return Verdict::Fail(format!("cannot SIGKILL n{id}: {e}"));
        }
    }
    for &(id, _) in &nodes {
        if let Err(e) = bench.restart(id) {
            return Verdict::Fail(e);
        }
    }
    let ids: Vec<NodeId> = nodes.iter().map(|&(id, _)| id).collect();
    if let Err(problems) = bench.wait_listening(&ids, Duration::from_secs(10)) {
        return Verdict::Fail(format!(
            "after SIGKILL and a restart on the same data dirs:\n{}",
            problems.join("\n")
        ));
    }
    let (leader, term) = match probe::wait_for_leader(&nodes, bench.timeout, bench.election_timeout)
    {
        Ok(leader) => leader,
        Err(poll) => {
            return Verdict::Fail(format!(
                "after SIGKILL and a restart, no leader that every node names within {:?}: {}",
                bench.election_timeout,
                poll.describe()
            ))
        }
    };
    session.leader = leader;
    let mut problems = terms_went_back(bench, &before);
    for (key, want) in acknowledged() {
        let got = session.read(key);
        problems.extend(
            expect(
                &format!("get {key} after the restart (acknowledged before it as {want:?})"),
                got,
                &ClientResult::Ok(Reply::Value(Some(want.into()))),
            )
            .err(),
        );
    }
    let write = session.write(WriteOp::Put {
        key: REGISTER.into(),
        value: "after-restart".into(),
    });
    problems.extend(
        expect(
            &format!(
                "put {REGISTER} in the same session after the restart (seq {})",
                session.seq
            ),
            write,
            &ClientResult::Ok(Reply::Done),
        )
        .err(),
    );
    let pass = format!(
        "killed all, restarted: n{leader} leads term {term}, every acknowledged write is there"
    );
    Verdict::from_problems(problems, pass)
}

/// Nodes whose term after the restart is below the one they had before (a term or vote that
/// was not made durable).
fn terms_went_back(bench: &Bench, before: &BTreeMap<NodeId, u64>) -> Vec<String> {
    let after = probe::Poll::take(&bench.nodes(), bench.timeout);
    after
        .statuses
        .iter()
        .filter_map(|(id, s)| {
            let (was, now) = (before.get(id)?, s.as_ref().ok()?.term);
            (now < *was).then(|| {
                format!("n{id}'s term went back from {was} to {now} across the restart: the term (and the vote) must be durable before the node answers or votes")
            })
        })
        .collect()
}

/// SIGTERM on node `id` (restarted after), then whether it came back.
pub fn sigterm_then_restart(bench: &Bench, findings: &mut Findings, id: NodeId) {
    findings.add(&rules::SIGTERM, sigterm(bench, id));
    if let Err(problems) = bench.wait_listening(&[id], Duration::from_secs(10)) {
        findings.add(
            &rules::RESTART,
            Verdict::Fail(format!(
                "n{id}, restarted after SIGTERM on its data dir:\n{}",
                problems.join("\n")
            )),
        );
    }
    bench.restart_stopped();
}

/// Advisory: every node wrote something to its log.
pub fn logs(bench: &Bench) -> Verdict {
    let silent: Vec<String> = bench
        .nodes()
        .iter()
        .filter(|(id, _)| std::fs::metadata(bench.log_path(*id)).map_or(true, |m| m.len() == 0))
        .map(|(id, _)| format!("n{id}"))
        .collect();
    if silent.is_empty() {
        Verdict::Pass("every node wrote to its log".into())
    } else {
        Verdict::Warn(format!("{} wrote nothing to stdout or stderr; after a failed run the log is all there is to read", silent.join(", ")))
    }
}
