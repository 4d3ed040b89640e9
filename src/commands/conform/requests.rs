//! The client requests, one rule each: get, put, cas, append, a retried write applying once,
//! followers refusing (or serving) writes, pipelined requests, and the digest.
//!
//! The keys are `conform-*`, written by one session whose `client_id` is new to the cluster, on
//! a cluster that nobody else writes to, so every expected answer is exact. What a check leaves
//! in the store (`conform-reg` = `two`, `conform-log` = `ab`) is what the restart check later
//! expects to find again.

use std::time::{Duration, Instant};

use riptide_proto::{
    BlockingConnection, ClientOp, ClientResult, FailReason, Hello, NodeId, Reply, StateDigest,
    WriteOp,
};

use super::cluster::Bench;
use super::probe;
use super::rules::{self, Findings, Verdict};
use super::session::{expect, shape, Session};

pub const REGISTER: &str = "conform-reg";
pub const LOG: &str = "conform-log";
const NEVER_WRITTEN: &str = "conform-never-written";

fn value(v: &str) -> ClientResult {
    ClientResult::Ok(Reply::Value(Some(v.into())))
}

const DONE: ClientResult = ClientResult::Ok(Reply::Done);

fn put(key: &str, value: &str) -> WriteOp {
    WriteOp::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn cas(key: &str, expected: &str, new: &str) -> WriteOp {
    WriteOp::Cas {
        key: key.into(),
        expected: expected.into(),
        new: new.into(),
    }
}

fn append(key: &str, suffix: &str) -> WriteOp {
    WriteOp::Append {
        key: key.into(),
        suffix: suffix.into(),
    }
}

/// Collects the first problem of each rule; a rule with none passes with `pass`.
fn verdict(problems: Vec<Result<(), String>>, pass: &str) -> Verdict {
    Verdict::from_problems(problems.into_iter().filter_map(Result::err).collect(), pass)
}

/// Runs every request rule against the cluster the session's leader leads.
pub fn check(bench: &Bench, findings: &mut Findings, session: &mut Session) {
    register(findings, session);
    findings.add(&rules::APPEND, appends(session));
    findings.add(&rules::EXACTLY_ONCE, exactly_once(session));
    findings.add(&rules::FOLLOWERS, followers(bench, session));
    findings.add(&rules::PIPELINING, pipelining(bench, session));
    findings.add(&rules::DIGEST, digest(bench));
}

/// `get`, `put` and `cas` on one register: nil before, `one` after the put, `two` after the
/// cas; a cas that expects the old value, and one on a key never written, fail definitely.
fn register(findings: &mut Findings, session: &mut Session) {
    let l = session.leader;
    let get_missing = expect(
        &format!("get {NEVER_WRITTEN} (leader n{l})"),
        session.read(NEVER_WRITTEN),
        &ClientResult::Ok(Reply::Value(None)),
    );
    let put_one = expect(
        &format!("put {REGISTER}=one (seq {})", session.seq + 1),
        session.write(put(REGISTER, "one")),
        &DONE,
    );
    let get_one = expect(
        &format!("get {REGISTER} after put"),
        session.read(REGISTER),
        &value("one"),
    );
    findings.add(
        &rules::PUT,
        verdict(vec![put_one], "put answered {\"Ok\":\"Done\"}"),
    );
    let cas_rules = vec![
        expect(
            &format!("cas {REGISTER} one->two"),
            session.write(cas(REGISTER, "one", "two")),
            &DONE,
        ),
        expect(
            &format!("cas {REGISTER} one->three (it holds two)"),
            session.write(cas(REGISTER, "one", "three")),
            &ClientResult::Fail(FailReason::CasMismatch {
                actual: "two".into(),
            }),
        ),
        expect(
            &format!("cas {NEVER_WRITTEN} x->y"),
            session.write(cas(NEVER_WRITTEN, "x", "y")),
            &ClientResult::Fail(FailReason::KeyMissing),
        ),
        expect(
            &format!("get {REGISTER} after the cas"),
            session.read(REGISTER),
            &value("two"),
        ),
    ];
    findings.add(
        &rules::GET,
        verdict(
            vec![get_missing, get_one],
            "a key never written read nil, a written one its value",
        ),
    );
    findings.add(
        &rules::CAS,
        verdict(
            cas_rules,
            "cas matched, mismatched (with the actual value) and missed as it should",
        ),
    );
}

/// Two appends to a key never written read back concatenated.
fn appends(session: &mut Session) -> Verdict {
    let appends = vec![
        expect(
            &format!("append {LOG} +a (a new key)"),
            session.write(append(LOG, "a")),
            &DONE,
        ),
        expect(
            &format!("append {LOG} +b"),
            session.write(append(LOG, "b")),
            &DONE,
        ),
        expect(
            &format!("get {LOG} after +a +b"),
            session.read(LOG),
            &value("ab"),
        ),
    ];
    verdict(appends, "a then b read back as \"ab\"")
}

/// The last write (`append conform-log +b`) sent again with its (client_id, seq), on a new
/// connection: it must answer as the first time and not apply again.
fn exactly_once(session: &mut Session) -> Verdict {
    let seq = session.seq;
    let what = format!(
        "append {LOG} +b sent again with the same client_id {} and seq {seq}",
        session.client_id
    );
    let retry = session.send_to_leader(ClientOp::Write(append(LOG, "b")), seq);
    let problems = vec![
        expect(&what, retry, &DONE),
        expect(
            &format!("get {LOG} after that retry"),
            session.read(LOG),
            &value("ab"),
        ),
    ];
    verdict(
        problems,
        "a retried append answered Ok(Done) again and applied once",
    )
}

/// A write sent to each follower: `NotLeader` (with a right hint or none) or served.
fn followers(bench: &Bench, session: &mut Session) -> Verdict {
    let leader = session.leader;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (id, _) in bench.nodes().into_iter().filter(|&(id, _)| id != leader) {
        session.seq += 1;
        let op = ClientOp::Write(put("conform-follower", &format!("from-n{id}")));
        let what = format!(
            "put conform-follower to follower n{id} (seq {})",
            session.seq
        );
        match session.send_to(id, op, session.seq) {
            Ok(ClientResult::NotLeader { leader_hint: None }) => seen.push(format!("n{id} NotLeader")),
            Ok(ClientResult::NotLeader { leader_hint: Some(hint) }) => {
                let want = bench.addr(leader).to_string();
                if hint.id != leader || hint.addr != want {
                    problems.push(format!(
                        "{what}: the hint says {}, but n{leader} at {want} leads",
                        shape(&hint)
                    ));
                }
                seen.push(format!("n{id} NotLeader with hint n{}", hint.id));
            }
            Ok(ClientResult::Ok(Reply::Done)) => seen.push(format!("n{id} served it")),
            Ok(other) => problems.push(format!(
                "{what}: expected {{\"NotLeader\":{{\"leader_hint\":...}}}} or {{\"Ok\":\"Done\"}}, got {}",
                shape(&other)
            )),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    Verdict::from_problems(problems, seen.join(", "))
}

/// Three requests on one connection before reading any answer; all three must come back.
fn pipelining(bench: &Bench, session: &mut Session) -> Verdict {
    let leader = session.leader;
    let mut run = || -> Result<String, String> {
        let mut conn = BlockingConnection::open(bench.addr(leader), bench.timeout, &Hello::Client)
            .map_err(|e| {
                format!(
                    "cannot connect to n{leader}: {}",
                    probe::describe(&e, bench.timeout)
                )
            })?;
        let requests = [
            session.request(ClientOp::Status, 0),
            session.request(
                ClientOp::Get {
                    key: REGISTER.into(),
                },
                0,
            ),
            session.request(ClientOp::Status, 0),
        ];
        for request in &requests {
            conn.send(request).map_err(|e| format!("sending: {e}"))?;
        }
        let mut ids = Vec::new();
        for n in 0..requests.len() {
            let answer = probe::read_answer(&mut conn, bench.timeout).map_err(|e| {
                format!(
                    "sent ids {:?} at once to n{leader}; answer {} of 3: {e}",
                    requests.iter().map(|r| r.id).collect::<Vec<_>>(),
                    n + 1
                )
            })?;
            ids.push(answer.id);
        }
        let mut want: Vec<u64> = requests.iter().map(|r| r.id).collect();
        let got = ids.clone();
        ids.sort();
        want.sort();
        if ids != want {
            return Err(format!(
                "sent ids {want:?} at once to n{leader}; the answers carry ids {got:?}"
            ));
        }
        Ok(format!(
            "3 requests sent at once to n{leader} came back as ids {got:?}"
        ))
    };
    match run() {
        Ok(pass) => Verdict::Pass(pass),
        Err(e) => Verdict::Fail(e),
    }
}

/// Every node's digest, once they have all applied the same index (waiting a few seconds for
/// followers to catch up): the same keys and data.
fn digest(bench: &Bench) -> Verdict {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut digests: Vec<StateDigest> = Vec::new();
        let mut problems = Vec::new();
        for (id, addr) in bench.nodes() {
            match probe::ask(addr, bench.timeout, &probe::plain(ClientOp::Digest)) {
                Ok(ClientResult::Digest(d)) if d.id == id => digests.push(d),
                Ok(ClientResult::Digest(d)) => {
                    problems.push(format!("n{id} answered a digest labelled id {}", d.id))
                }
                Ok(other) => problems.push(format!("n{id} answered Digest with {}", shape(&other))),
                Err(e) => problems.push(format!("n{id}: {e}")),
            }
        }
        if !problems.is_empty() {
            return Verdict::Fail(problems.join("\n"));
        }
        let same_index = digests
            .windows(2)
            .all(|w| w[0].applied_index == w[1].applied_index);
        if same_index {
            return compare_digests(&digests);
        }
        if Instant::now() >= deadline {
            let seen: Vec<String> = digests
                .iter()
                .map(|d| format!("n{} at {}", d.id, d.applied_index))
                .collect();
            return Verdict::Fail(format!(
                "the nodes did not reach one applied index within 5 s with no writes going on: {}",
                seen.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn compare_digests(digests: &[StateDigest]) -> Verdict {
    let first = &digests[0];
    let differ: Vec<String> = digests
        .iter()
        .filter(|d| (d.keys, d.data_digest) != (first.keys, first.data_digest))
        .map(|d| {
            format!(
                "n{}: {} keys, data {} (n{}: {} keys, data {})",
                d.id, d.keys, d.data_digest, first.id, first.keys, first.data_digest
            )
        })
        .collect();
    if !differ.is_empty() {
        return Verdict::Fail(format!(
            "at applied index {} the replicas differ: {}",
            first.applied_index,
            differ.join("; ")
        ));
    }
    if first.keys < 2 {
        return Verdict::Fail(format!(
            "every node reports {} keys, but {REGISTER} and {LOG} were written",
            first.keys
        ));
    }
    Verdict::Pass(format!(
        "all {} nodes at applied index {} report {} keys, data {}",
        digests.len(),
        first.applied_index,
        first.keys,
        first.data_digest
    ))
}

/// The nodes' ids other than `leader`.
pub fn followers_of(bench: &Bench, leader: NodeId) -> Vec<NodeId> {
    bench
        .nodes()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|&id| id != leader)
        .collect()
}
