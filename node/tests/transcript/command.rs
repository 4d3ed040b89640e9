//! The commands of the script language: parsing one line and carrying it out on the cluster.
//! The language itself is described in the module doc of `transcript/mod.rs`.

use riptide_node::raft::ReadId;
use riptide_node::types::{HardState, NodeId};

use super::assertion;
use super::cluster::{Cluster, Filter, Options};
use super::format::{self, node_id, number};
use super::snapshots;

/// Why a command did not go as the script says.
#[derive(Debug)]
pub enum Failure {
    /// An `assert` found a different fact. The script goes on: later facts may still be checked.
    Assertion(String),
    /// The line is not a valid command here (a bug in the script). The script stops.
    Script(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Script(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Failure {
        Failure::Script(why.to_string())
    }
}

/// The state of one script run.
#[derive(Default)]
pub struct Session {
    cluster: Option<Cluster>,
    /// The id of the latest read; a `read` without `id=` gets the next one.
    next_read: ReadId,
}

/// A command's words: positional arguments and `key=value` options, consumed one by one so that
/// anything left over is reported as a mistake.
pub struct Words<'a> {
    command: &'a str,
    positional: Vec<&'a str>,
    options: Vec<(&'a str, &'a str)>,
}

impl<'a> Words<'a> {
    pub fn new(command: &'a str, rest: &'a str) -> Words<'a> {
        let (options, positional) = rest
            .split_whitespace()
            .partition::<Vec<_>, _>(|w| w.contains('='));
        Words {
            command,
            positional,
            options: options
                .iter()
                .map(|w| w.split_once('=').expect("has ="))
                .collect(),
        }
    }

    fn node(&mut self) -> Result<NodeId, String> {
        if self.positional.is_empty() {
            return Err(format!("{} needs a node id", self.command));
        }
        node_id(self.positional.remove(0))
    }

    fn optional_number(&mut self) -> Result<Option<u64>, String> {
        match self.positional.is_empty() {
            true => Ok(None),
            false => number(self.positional.remove(0)).map(Some),
        }
    }

    fn option(&mut self, key: &str) -> Option<&'a str> {
        let k = self.options.iter().position(|(name, _)| *name == key)?;
        Some(self.options.remove(k).1)
    }

    fn number_option(&mut self, key: &str) -> Result<Option<u64>, String> {
        self.option(key).map(number).transpose()
    }

    fn bool_option(&mut self, key: &str) -> Result<Option<bool>, String> {
        self.option(key).map(boolean).transpose()
    }

    /// The message filter options: `from= to= type= term= rejected= carries=`.
    pub fn filter(&mut self) -> Result<Filter, String> {
        let kind = self.option("type").map(str::to_string);
        if let Some(kind) = &kind {
            if !KINDS.iter().any(|k| k.eq_ignore_ascii_case(kind)) {
                return Err(format!(
                    "unknown message type {kind}; one of {}",
                    KINDS.join(" ")
                ));
            }
        }
        Ok(Filter {
            from: self.option("from").map(node_id).transpose()?,
            to: self.option("to").map(node_id).transpose()?,
            kind,
            term: self.number_option("term")?,
            rejected: self.bool_option("rejected")?,
            carries: self.number_option("carries")?,
        })
    }

    pub fn finish(self) -> Result<(), String> {
        let extra: Vec<String> = (self.positional.iter().map(|w| w.to_string()))
            .chain(self.options.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: unexpected {}", self.command, extra.join(" ")))
        }
    }
}

/// The message types, as [`riptide_node::raft::Body::kind`] names them.
const KINDS: [&str; 8] = [
    "PreVote",
    "PreVoteResponse",
    "RequestVote",
    "RequestVoteResponse",
    "AppendEntries",
    "AppendEntriesResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
];

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected true or false, got {text}")),
    }
}

impl Session {
    /// Carries out one command line and returns what it printed (`ok` if nothing).
    pub fn run(&mut self, line: &str) -> Result<Vec<String>, Failure> {
        let line = line.trim();
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        if command == "cluster" {
            self.cluster = Some(start_cluster(Words::new(command, rest))?);
        } else {
            let cluster = (self.cluster.as_mut())
                .ok_or_else(|| format!("{command} before any cluster command"))?;
            if command == "assert" {
                return assertion::check(cluster, rest).map(|()| Vec::new());
            }
            cluster.delivered.clear();
            let next_read = &mut self.next_read;
            act(cluster, command, rest, next_read)?;
        }
        let cluster = self.cluster.as_mut().expect("set above");
        let lines = cluster.trace.take();
        Ok(if lines.is_empty() {
            vec!["ok".into()]
        } else {
            lines
        })
    }
}

/// `cluster N [prevote=B] [checkquorum=B] [seed=N] [max-batch=N] [max-inflight=N] [heartbeat=N]
/// [election=MIN..MAX] [chunk=N] [bugs=NAME,…] [apply-per-tick=N] [lease=B]`.
fn start_cluster(mut words: Words) -> Result<Cluster, String> {
    let size = words.optional_number()?.ok_or("cluster needs a size")?;
    let mut o = Options::default();
    o.pre_vote = words.bool_option("prevote")?.unwrap_or(o.pre_vote);
    o.check_quorum = words.bool_option("checkquorum")?.unwrap_or(o.check_quorum);
    o.seed = words.number_option("seed")?.unwrap_or(o.seed);
    o.max_batch_entries = words
        .number_option("max-batch")?
        .map_or(o.max_batch_entries, |n| n as usize);
    o.max_inflight = words
        .number_option("max-inflight")?
        .map_or(o.max_inflight, |n| n as usize);
    o.heartbeat_interval = words
        .number_option("heartbeat")?
        .map_or(o.heartbeat_interval, |n| n as u32);
    o.max_snapshot_chunk = words
        .number_option("chunk")?
        .map_or(o.max_snapshot_chunk, |n| n as usize);
    if let Some(range) = words.option("election") {
        let (min, max) = range.split_once("..").ok_or("election=MIN..MAX")?;
        o.election_timeout = (number(min)? as u32, number(max)? as u32);
    }
    if let Some(bugs) = words.option("bugs") {
        o.bugs = (bugs.split(',').map(str::parse).collect::<Result<_, _>>())?;
    }
    o.apply_per_tick = words.number_option("apply-per-tick")?.map(|n| n as u32);
    o.lease = words.bool_option("lease")?.unwrap_or(false);
    words.finish()?;
    Cluster::new(size, o)
}

/// Every command but `cluster` and `assert`.
fn act(
    cluster: &mut Cluster,
    command: &str,
    rest: &str,
    next_read: &mut ReadId,
) -> Result<(), String> {
    let mut words = Words::new(command, rest);
    match command {
        "campaign" => cluster.campaign(words.node()?)?,
        "tick" => {
            let id = words.node()?;
            let times = words.optional_number()?.unwrap_or(1);
            cluster.tick(id, times as usize)?;
        }
        "skip" => {
            let id = words.node()?;
            let ticks = words.optional_number()?.ok_or("skip NODE TICKS")?;
            cluster.skip_ticks(id, ticks)?;
        }
        "run" => {
            let rounds = words
                .optional_number()?
                .ok_or("run needs a number of rounds")?;
            cluster.run(rounds as usize)?;
        }
        "propose" => {
            let (id, text) = rest.trim().split_once(' ').ok_or("propose NODE COMMAND")?;
            return cluster.propose(node_id(id)?, text.trim().as_bytes().to_vec());
        }
        "read" => {
            let id = words.node()?;
            let read = words.number_option("id")?.unwrap_or(*next_read + 1);
            *next_read = read;
            cluster.read(id, read)?;
        }
        "deliver" | "stabilize" | "drop" | "duplicate" => {
            let filter = words.filter()?;
            let limit = words.number_option("count")?.map(|n| n as usize);
            match (command, limit) {
                ("deliver", _) => cluster.deliver(&filter, limit)?,
                ("stabilize", None) => cluster.stabilize(&filter)?,
                ("drop", _) => cluster.drop_messages(&filter, limit),
                ("duplicate", _) => cluster.duplicate(&filter, limit),
                _ => return Err("stabilize takes no count=".into()),
            }
        }
        "inject" => return cluster.deliver_message(format::parse_message(rest)?),
        "partition" => {
            let groups = (rest.split('|'))
                .map(|group| group.split_whitespace().map(node_id).collect())
                .collect::<Result<Vec<Vec<NodeId>>, String>>()?;
            if groups.len() < 2 {
                return Err("partition needs groups separated by |".into());
            }
            return cluster.partition(&groups);
        }
        "isolate" => {
            let id = words.node()?;
            let others = cluster.ids().iter().copied().filter(|&x| x != id).collect();
            cluster.partition(&[vec![id], others])?;
        }
        "heal" => cluster.heal(),
        "crash" => cluster.crash(words.node()?)?,
        "restart" => cluster.restart(words.node()?)?,
        "set-durable" => set_durable(cluster, &mut words)?,
        "truncate-log" => {
            let id = words.node()?;
            let last = words
                .number_option("last")?
                .ok_or("truncate-log N last=I")?;
            cluster.truncate_log(id, last)?;
        }
        "snapshot" => {
            let id = words.node()?;
            let keep = words.number_option("keep")?.unwrap_or(0);
            cluster.take_snapshot(id, keep)?;
        }
        "corrupt-incoming" => cluster.corrupt_incoming(words.node()?)?,
        "status" | "log" | "network" => view(cluster, command, &mut words)?,
        other => return Err(format!("unknown command {other}")),
    }
    words.finish()
}

/// `status [N…]`, `log N` and `network`: print what the cluster holds.
fn view(cluster: &mut Cluster, command: &str, words: &mut Words) -> Result<(), String> {
    let lines: Vec<String> = match command {
        "status" => {
            let mut ids = Vec::new();
            while !words.positional.is_empty() {
                ids.push(words.node()?);
            }
            if ids.is_empty() {
                ids = cluster.ids().to_vec();
            }
            ids.into_iter()
                .map(|id| cluster.status(id))
                .collect::<Result<_, _>>()?
        }
        "log" => {
            let id = words.node()?;
            cluster.node(id)?;
            let durable = &cluster.durable[&id];
            let snapshot = durable.snapshot.iter().map(|s| {
                let at = snapshots::position(&s.meta);
                format!("snapshot {at} bytes={}", s.len())
            });
            let lines: Vec<String> = snapshot
                .chain(durable.entries.iter().map(format::entry))
                .collect();
            match lines.is_empty() {
                true => vec!["empty".into()],
                false => lines,
            }
        }
        _ => cluster.network.iter().map(format::message).collect(),
    };
    for line in lines {
        cluster.trace.event(line);
    }
    Ok(())
}

/// `set-durable N term=T vote=V log=T,T,…` (`vote=none`, `log=` for an empty log).
fn set_durable(cluster: &mut Cluster, words: &mut Words) -> Result<(), String> {
    let id = words.node()?;
    let term = words
        .number_option("term")?
        .ok_or("set-durable needs term=")?;
    let voted_for = match words.option("vote").ok_or("set-durable needs vote=")? {
        "none" => None,
        vote => Some(node_id(vote)?),
    };
    let log = words.option("log").ok_or("set-durable needs log=")?;
    let terms = (log.split(',').filter(|t| !t.is_empty()))
        .map(number)
        .collect::<Result<Vec<_>, _>>()?;
    cluster.set_durable(id, HardState { term, voted_for }, &terms)
}
