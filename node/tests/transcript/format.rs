//! The one text form of messages and entries, printed in traces and parsed back by `inject`.
//!
//! The printer and the parser live side by side so that they stay inverse: every message line of a
//! trace can be pasted after `inject` to send the same message again.
//!
//! ```text
//! n1->n2 PreVote term=2 last=5@1                  (also RequestVote)
//! n2->n1 PreVoteResponse term=2 granted           (or rejected; also RequestVoteResponse)
//! n1->n2 AppendEntries term=1 prev=1@1 commit=1 round=2 entries=[2@1 put k v, 3@1 noop]
//! n2->n1 AppendEntriesResponse term=1 ok match=3 round=2
//! n3->n1 AppendEntriesResponse term=1 reject prev=7 conflict=4@2 round=0
//! n1->n3 InstallSnapshot term=1 snap=8@1 voters=1,2,3 offset=0 total=93 crc=0x1c291ca3 round=0 data=0x3140…
//! n3->n1 InstallSnapshotResponse term=1 snap=8 next=32 round=0   (or: snap=8 done match=8 round=0)
//! ```
//!
//! Positions are written `index@term`. An entry is `index@term payload`, where the payload is
//! `noop` or the command's bytes as text (`0x…` hex if they are not printable text). A rejection's
//! `conflict=I@T` is the follower's hint (first index `I` of its conflicting term `T`), or
//! `conflict=I` when its log is too short to have a term there. An InstallSnapshot chunk names the
//! snapshot (`snap=index@term` and its voters), the chunk's offset, the whole image's length and
//! CRC-32, and the chunk's bytes in hex; its answer names the snapshot's index and either the
//! offset the follower wants next or `done` with the index its log matches up to.

use riptide_node::raft::{AppendResult, Body, Message, SnapshotResult};
use riptide_node::types::{Entry, Index, NodeId, Payload, SnapshotMeta, Term};

pub fn message(m: &Message) -> String {
    let head = format!("n{}->n{} {} term={}", m.from, m.to, m.body.kind(), m.term);
    let tail = match &m.body {
        Body::RequestVote {
            last_log_index,
            last_log_term,
            leader_transfer,
            ..
        } => match leader_transfer {
            false => format!("last={last_log_index}@{last_log_term}"),
            true => format!("last={last_log_index}@{last_log_term} transfer"),
        },
        Body::TimeoutNow => String::new(),
        Body::RequestVoteResponse { granted, .. } => {
            (if *granted { "granted" } else { "rejected" }).to_string()
        }
        Body::AppendEntries {
            prev_index,
            prev_term,
            entries,
            commit,
            read_round,
        } => {
            let mut s = format!("prev={prev_index}@{prev_term} commit={commit} round={read_round}");
            if !entries.is_empty() {
                let list: Vec<String> = entries.iter().map(entry).collect();
                s += &format!(" entries=[{}]", list.join(", "));
            }
            s
        }
        Body::AppendEntriesResponse { result, read_round } => match result {
            AppendResult::Success { match_index } => {
                format!("ok match={match_index} round={read_round}")
            }
            AppendResult::Reject {
                rejected_prev,
                conflict_term,
                conflict_index,
            } => {
                let hint = match conflict_term {
                    Some(term) => format!("{conflict_index}@{term}"),
                    None => conflict_index.to_string(),
                };
                format!("reject prev={rejected_prev} conflict={hint} round={read_round}")
            }
        },
        Body::InstallSnapshot {
            meta,
            offset,
            data,
            total_len,
            checksum,
            read_round,
        } => {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            let voters: Vec<String> = meta.voters.iter().map(u64::to_string).collect();
            format!(
                "snap={}@{} voters={} offset={offset} total={total_len} crc={checksum:#010x} round={read_round} data=0x{hex}",
                meta.last_index,
                meta.last_term,
                voters.join(",")
            )
        }
        Body::InstallSnapshotResponse {
            snapshot_index,
            result,
            read_round,
        } => match result {
            SnapshotResult::Continue { next_offset } => {
                format!("snap={snapshot_index} next={next_offset} round={read_round}")
            }
            SnapshotResult::Done { match_index } => {
                format!("snap={snapshot_index} done match={match_index} round={read_round}")
            }
        },
    };
    format!("{head} {tail}")
}

pub fn entry(e: &Entry) -> String {
    format!("{}@{} {}", e.index, e.term, payload(&e.payload))
}

pub fn payload(p: &Payload) -> String {
    match p {
        Payload::Noop => "noop".to_string(),
        Payload::Command(bytes) => command(bytes),
        Payload::Config(m) => format!("config {m}"),
    }
}

/// A command as text if it is printable (and cannot be confused with the list syntax), else hex.
pub fn command(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s.is_empty()
                && s != "noop"
                && !s.starts_with("0x")
                && s.chars()
                    .all(|c| (' '..='~').contains(&c) && !",[]".contains(c)) =>
        {
            s.to_string()
        }
        _ => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

fn parse_command(text: &str) -> Result<Vec<u8>, String> {
    match text.strip_prefix("0x") {
        Some(_) => parse_hex(text),
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// Parses `0x` followed by an even number of hex digits (none for no bytes).
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let hex = (text.strip_prefix("0x")).ok_or_else(|| format!("expected 0x…, got {text}"))?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(format!("odd-length or non-ASCII hex {text}"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).map_err(|e| format!("{text}: {e}")))
        .collect()
}

/// Parses `index@term payload`.
pub fn parse_entry(text: &str) -> Result<Entry, String> {
    let text = text.trim();
    let (position, payload) = text.split_once(' ').unwrap_or((text, ""));
    let (index, term) = parse_position(position)?;
    let payload = match payload.trim() {
        "noop" => Payload::Noop,
        "" => {
            return Err(format!(
                "entry {text} has no payload (write noop or a command)"
            ))
        }
        other => Payload::Command(parse_command(other)?),
    };
    Ok(Entry {
        term,
        index,
        payload,
    })
}

/// Parses `index@term`.
pub fn parse_position(text: &str) -> Result<(Index, Term), String> {
    let (index, term) = text
        .split_once('@')
        .ok_or_else(|| format!("expected index@term, got {text}"))?;
    Ok((number(index)?, number(term)?))
}

pub fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("expected a number, got {text:?}"))
}

/// Parses `nA->nB` (the `n` is optional).
fn parse_route(text: &str) -> Result<(NodeId, NodeId), String> {
    let (from, to) = text
        .split_once("->")
        .ok_or_else(|| format!("expected from->to, got {text}"))?;
    Ok((node_id(from)?, node_id(to)?))
}

/// A node id, written `2` or `n2`.
pub fn node_id(text: &str) -> Result<NodeId, String> {
    number(text.strip_prefix('n').unwrap_or(text))
}

/// Parses a message in the form [`message`] prints.
pub fn parse_message(text: &str) -> Result<Message, String> {
    let (text, entries) = match text.split_once("entries=[") {
        Some((head, list)) => {
            let list = list
                .trim_end()
                .strip_suffix(']')
                .ok_or("entries=[...] must end the message")?;
            let entries = list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_entry)
                .collect::<Result<Vec<_>, _>>()?;
            (head, entries)
        }
        None => (text, Vec::new()),
    };
    let mut words = text.split_whitespace();
    let (from, to) = parse_route(words.next().ok_or("empty message")?)?;
    let kind = words.next().ok_or("message without a type")?;
    let mut fields = Fields::default();
    for word in words {
        match word.split_once('=') {
            Some((key, value)) => fields.values.push((key.to_string(), value.to_string())),
            None => fields.flags.push(word.to_string()),
        }
    }
    let term = number(&fields.take("term")?)?;
    let body = parse_body(kind, &mut fields, entries)?;
    fields.finish()?;
    Ok(Message {
        from,
        to,
        term,
        body,
    })
}

fn parse_body(kind: &str, fields: &mut Fields, entries: Vec<Entry>) -> Result<Body, String> {
    let body = match kind {
        "PreVote" | "RequestVote" => {
            let (last_log_index, last_log_term) = parse_position(&fields.take("last")?)?;
            Body::RequestVote {
                last_log_index,
                last_log_term,
                pre_vote: kind == "PreVote",
                leader_transfer: fields.flag("transfer"),
            }
        }
        "PreVoteResponse" | "RequestVoteResponse" => Body::RequestVoteResponse {
            granted: fields.choose("granted", "rejected")?,
            pre_vote: kind == "PreVoteResponse",
        },
        "AppendEntries" => {
            let (prev_index, prev_term) = parse_position(&fields.take("prev")?)?;
            Body::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit: number(&fields.take("commit")?)?,
                read_round: number(&fields.take("round")?)?,
            }
        }
        "AppendEntriesResponse" => parse_append_response(fields)?,
        "InstallSnapshot" => parse_install_snapshot(fields)?,
        "TimeoutNow" => Body::TimeoutNow,
        "InstallSnapshotResponse" => {
            let snapshot_index = number(&fields.take("snap")?)?;
            let result = match fields.flags.iter().position(|f| f == "done") {
                Some(k) => {
                    fields.flags.remove(k);
                    SnapshotResult::Done {
                        match_index: number(&fields.take("match")?)?,
                    }
                }
                None => SnapshotResult::Continue {
                    next_offset: number(&fields.take("next")?)?,
                },
            };
            Body::InstallSnapshotResponse {
                snapshot_index,
                result,
                read_round: number(&fields.take("round")?)?,
            }
        }
        other => return Err(format!("unknown message type {other}")),
    };
    Ok(body)
}

/// `ok match=I round=R` or `reject prev=P conflict=I[@T] round=R`.
fn parse_append_response(fields: &mut Fields) -> Result<Body, String> {
    let result = if fields.choose("ok", "reject")? {
        AppendResult::Success {
            match_index: number(&fields.take("match")?)?,
        }
    } else {
        let conflict = fields.take("conflict")?;
        let (conflict_index, conflict_term) = match conflict.split_once('@') {
            Some((index, term)) => (number(index)?, Some(number(term)?)),
            None => (number(&conflict)?, None),
        };
        AppendResult::Reject {
            rejected_prev: number(&fields.take("prev")?)?,
            conflict_term,
            conflict_index,
        }
    };
    Ok(Body::AppendEntriesResponse {
        result,
        read_round: number(&fields.take("round")?)?,
    })
}

/// `snap=I@T voters=A,B,… offset=O total=L crc=0x… round=R data=0x…`.
fn parse_install_snapshot(fields: &mut Fields) -> Result<Body, String> {
    let (last_index, last_term) = parse_position(&fields.take("snap")?)?;
    let voters = (fields.take("voters")?.split(',').filter(|v| !v.is_empty()))
        .map(node_id)
        .collect::<Result<Vec<_>, _>>()?;
    let crc = fields.take("crc")?;
    let checksum = (crc.strip_prefix("0x"))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| format!("expected crc=0x<8 hex digits>, got {crc}"))?;
    Ok(Body::InstallSnapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
            voters,
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        },
        offset: number(&fields.take("offset")?)?,
        total_len: number(&fields.take("total")?)?,
        checksum,
        read_round: number(&fields.take("round")?)?,
        data: parse_hex(&fields.take("data")?)?,
    })
}

/// The `key=value` fields and bare flags of a message, consumed one by one so that leftovers can
/// be reported.
#[derive(Default)]
struct Fields {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Fields {
    fn take(&mut self, key: &str) -> Result<String, String> {
        let k = self
            .values
            .iter()
            .position(|(name, _)| name == key)
            .ok_or_else(|| format!("missing {key}="))?;
        Ok(self.values.remove(k).1)
    }

    /// Whether the bare flag `name` is present (consumed).
    fn flag(&mut self, name: &str) -> bool {
        let k = self.flags.iter().position(|f| f == name);
        k.map(|k| self.flags.remove(k)).is_some()
    }

    /// Which of two flags is present: true for `yes`, false for `no`.
    fn choose(&mut self, yes: &str, no: &str) -> Result<bool, String> {
        let k = self
            .flags
            .iter()
            .position(|f| f == yes || f == no)
            .ok_or_else(|| format!("expected {yes} or {no}"))?;
        Ok(self.flags.remove(k) == yes)
    }

    fn finish(self) -> Result<(), String> {
        let extra: Vec<String> = (self.values.iter().map(|(k, v)| format!("{k}={v}")))
            .chain(self.flags)
            .collect();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected fields: {}", extra.join(" ")))
        }
    }
}
