//! What an op does ([`OpKind`]), what an event is ([`EventType`]) and how a paired op ended
//! ([`Outcome`]).
//!
//! An *event* is one line of a history: an `invoke`, or a completion (`ok`, `fail`, `info`). An
//! *op* is an invoke paired with its completion (see [`crate::pairing`]):
//!
//! - `ok`: the op took effect, somewhere between its invoke and its completion;
//! - `fail`: it definitely did not take effect;
//! - `info`: unknown; it may take effect at any moment after its invoke, or never;
//! - open: the history ended before any completion, which means the same as `info`.

use serde::{Deserialize, Serialize};

/// What an op does to a key: the `f` of a client event. A completion repeats its invoke's kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `read` (Porcupine: `get`): observes the value.
    Read,
    /// `write` (Porcupine: `put`): sets the value.
    Write,
    /// `cas [expected new]`: sets `new` if the value is `expected`.
    Cas,
    /// `append s`: appends the string `s` to the value.
    Append,
}

impl OpKind {
    pub const ALL: [OpKind; 4] = [OpKind::Read, OpKind::Write, OpKind::Cas, OpKind::Append];

    /// Accepts riptide/Jepsen names and Porcupine's `get`/`put` synonyms.
    pub fn parse(name: &str) -> Option<OpKind> {
        Some(match name {
            "read" | "get" => OpKind::Read,
            "write" | "put" => OpKind::Write,
            "cas" => OpKind::Cas,
            "append" => OpKind::Append,
            _ => return None,
        })
    }

    /// The `f` a history records: `read`, `write`, `cas` or `append`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
            OpKind::Append => "append",
        }
    }
}

/// The `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// The outcome a completion of this type gives its op; `None` for an invoke.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            EventType::Invoke => None,
            EventType::Ok => Some(Outcome::Ok),
            EventType::Fail => Some(Outcome::Fail),
            EventType::Info => Some(Outcome::Info),
        }
    }
}

/// How a paired op ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect between invoke and completion.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: may take effect at any time after its invoke, or never.
    Info,
    /// Invoked, never completed: the history ended first. Means the same as `Info`.
    Open,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_kinds_read_back_their_names_and_porcupines_synonyms() {
        for kind in OpKind::ALL {
            assert_eq!(OpKind::parse(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        assert_eq!(OpKind::parse("get"), Some(OpKind::Read));
        assert_eq!(OpKind::parse("put"), Some(OpKind::Write));
        assert_eq!(OpKind::parse("start"), None);
    }

    #[test]
    fn event_types_name_themselves_and_completions_give_outcomes() {
        for t in [
            EventType::Invoke,
            EventType::Ok,
            EventType::Fail,
            EventType::Info,
        ] {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
        assert_eq!(EventType::Invoke.outcome(), None);
        assert_eq!(EventType::Info.outcome(), Some(Outcome::Info));
        assert_eq!(serde_json::to_value(Outcome::Open).unwrap(), "open");
    }
}
