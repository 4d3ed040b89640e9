//! `assert` commands: facts checked on their own, independent of the expected output, so that a
//! regenerated transcript can never quietly accept a broken behaviour.
//!
//! `assert PROPERTY [NODE] [FILTER…] OP VALUE`, where OP is one of `= != < <= > >=` (the ordered
//! ones need numbers) and VALUE is the rest of the line. NODE is an id or `leader`, the one live
//! leader (the assertion fails unless there is exactly one). `assert safety` takes nothing more.

use riptide_node::raft::Message;
use riptide_node::types::Payload;

use super::cluster::{Cluster, Filter};
use super::command::{Failure, Words};
use super::format::{self, node_id, number};
use super::snapshots;
use super::trace::{id_or_none, role_name};

/// Properties of one node. The first group reads the live core and needs a running node.
/// `entry` takes an index after the node, `match` a peer (the leader's match index of it).
const LIVE_PROPERTIES: [&str; 12] = [
    "role",
    "term",
    "vote",
    "leader",
    "commit",
    "last",
    "entry",
    "first",
    "snapshot",
    "snapshots-sent",
    "violation",
    "match",
];
const NODE_PROPERTIES: [&str; 12] = [
    "applied",
    "log",
    "log-length",
    "commands",
    "command-count",
    "durable-term",
    "durable-vote",
    "reads",
    "failed-reads",
    "durable-snapshot",
    "incoming",
    "installs",
];
const OPERATORS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

pub fn check(cluster: &Cluster, text: &str) -> Result<(), Failure> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (&property, mut rest) = words.split_first().ok_or("assert needs a property")?;
    if property == "safety" {
        if !rest.is_empty() {
            return Err(Failure::Script("assert safety takes nothing more".into()));
        }
        return cluster.check_safety().map_err(Failure::Assertion);
    }
    let mut subject = property.to_string();
    let actual = if LIVE_PROPERTIES.contains(&property) || NODE_PROPERTIES.contains(&property) {
        let (&node, after) = rest.split_first().ok_or("the property needs a node")?;
        rest = after;
        let mut index = None;
        if property == "entry" || property == "match" {
            let (&at, after) = rest
                .split_first()
                .ok_or("entry and match need a node and a number")?;
            (rest, index) = (after, Some(number(at)?));
            subject += &format!(" {at}");
        }
        subject += &format!(" of {node}");
        node_property(cluster, property, node, index)?
    } else {
        let at =
            (rest.iter().position(|w| OPERATORS.contains(w))).ok_or("assert needs an operator")?;
        let filter = parse_filter(&rest[..at])?;
        if at > 0 {
            subject += &format!(" {}", rest[..at].join(" "));
        }
        rest = &rest[at..];
        cluster_property(cluster, property, &filter)?
    };
    let (&op, value) = rest.split_first().ok_or("assert needs an operator")?;
    let expected = value.join(" ");
    if compare(&actual, op, &expected)? {
        Ok(())
    } else {
        Err(Failure::Assertion(format!(
            "{subject} is {actual}, expected {op} {expected}"
        )))
    }
}

fn compare(actual: &str, op: &str, expected: &str) -> Result<bool, Failure> {
    let numbers = (actual.parse::<u64>(), expected.parse::<u64>());
    Ok(match (op, numbers) {
        ("=", (Ok(a), Ok(b))) => a == b,
        ("!=", (Ok(a), Ok(b))) => a != b,
        ("=", _) => actual == expected,
        ("!=", _) => actual != expected,
        ("<", (Ok(a), Ok(b))) => a < b,
        ("<=", (Ok(a), Ok(b))) => a <= b,
        (">", (Ok(a), Ok(b))) => a > b,
        (">=", (Ok(a), Ok(b))) => a >= b,
        (op, _) if OPERATORS.contains(&op) => {
            return Err(Failure::Script(format!(
                "{op} compares numbers: {actual} {op} {expected}"
            )))
        }
        (op, _) => return Err(Failure::Script(format!("unknown operator {op}"))),
    })
}

/// `from= to= type= term= rejected= carries=`, as for `deliver`.
fn parse_filter(words: &[&str]) -> Result<Filter, Failure> {
    let text = words.join(" ");
    let mut words = Words::new("the filter", &text);
    let filter = words.filter()?;
    words.finish()?;
    Ok(filter)
}

/// `leaders`, `leader-count`, `in-flight [FILTER]`, `delivered [FILTER]`, `last-sent`.
fn cluster_property(cluster: &Cluster, property: &str, filter: &Filter) -> Result<String, Failure> {
    let count = |messages: &mut dyn Iterator<Item = &Message>| {
        messages.filter(|m| filter.matches(m)).count()
    };
    let value = match property {
        "leaders" => list(cluster.leaders().iter().map(u64::to_string), " "),
        "leader-count" => cluster.leaders().len().to_string(),
        "in-flight" => count(&mut cluster.network.iter()).to_string(),
        "delivered" => count(&mut cluster.delivered.iter()).to_string(),
        "last-sent" => cluster
            .network
            .back()
            .map_or("none".into(), format::message),
        other => return Err(Failure::Script(format!("unknown property {other}"))),
    };
    Ok(value)
}

fn node_property(
    cluster: &Cluster,
    property: &str,
    node: &str,
    index: Option<u64>,
) -> Result<String, Failure> {
    let id = if node == "leader" {
        match cluster.leaders()[..] {
            [id] => id,
            ref leaders => {
                let leaders = list(leaders.iter().map(u64::to_string), " ");
                return Err(Failure::Assertion(format!(
                    "no single leader: leaders are {leaders}"
                )));
            }
        }
    } else {
        node_id(node)?
    };
    let raft = cluster.node(id)?;
    if LIVE_PROPERTIES.contains(&property) && cluster.crashed.contains(&id) {
        return Err(Failure::Assertion(format!(
            "node {id} is crashed: it has no {property}"
        )));
    }
    let durable = &cluster.durable[&id];
    let applied = &cluster.applied[&id];
    let commands = || {
        applied.iter().filter_map(|e| match &e.payload {
            Payload::Command(c) => Some(format::command(c)),
            Payload::Noop | Payload::Config(_) => None,
        })
    };
    let value = match property {
        "role" => role_name(raft.role()),
        "term" => raft.term().to_string(),
        "vote" => id_or_none(raft.voted_for()),
        "leader" => id_or_none(raft.leader()),
        "commit" => raft.log().commit_index().to_string(),
        "last" => raft.log().last_index().to_string(),
        "entry" => (index.and_then(|i| raft.log().get(i))).map_or("none".into(), format::entry),
        "first" => raft.log().first_index().to_string(),
        "match" => (index.and_then(|peer| raft.match_index_of(peer)))
            .map_or("none".into(), |m| m.to_string()),
        "snapshot" => (raft.snapshot()).map_or("none".into(), |s| snapshots::position(&s.meta)),
        "snapshots-sent" => raft.snapshots_sent().to_string(),
        "violation" => (raft.safety_violation()).map_or("none".into(), |v| {
            format!(
                "leader={} from={} commit={}",
                v.leader, v.from_index, v.commit
            )
        }),
        "applied" => applied.last().map_or(0, |e| e.index).to_string(),
        "log" => list(durable.entries.iter().map(|e| e.term.to_string()), " "),
        "log-length" => durable.entries.len().to_string(),
        "commands" => list(commands(), ", "),
        "command-count" => commands().count().to_string(),
        "durable-term" => durable.hard_state.term.to_string(),
        "durable-vote" => id_or_none(durable.hard_state.voted_for),
        "durable-snapshot" => {
            (durable.snapshot.as_ref()).map_or("none".into(), |s| snapshots::position(&s.meta))
        }
        "incoming" => cluster.incoming.get(&id).map_or(0, Vec::len).to_string(),
        "installs" => cluster.installs.get(&id).copied().unwrap_or(0).to_string(),
        "reads" => {
            let reads = cluster.reads.get(&id).into_iter().flatten();
            list(reads.map(|r| format!("{}@{}", r.id, r.index)), " ")
        }
        "failed-reads" => {
            let failed = cluster.failed_reads.get(&id).into_iter().flatten();
            list(failed.map(u64::to_string), " ")
        }
        other => return Err(Failure::Script(format!("unknown property {other}"))),
    };
    Ok(value)
}

/// The items joined by `separator`, or `none`.
fn list(items: impl Iterator<Item = String>, separator: &str) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(separator)
    }
}
