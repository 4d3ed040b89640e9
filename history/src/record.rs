//! [`Record`]: one line of `history.jsonl` (see `docs/history-format.md`).
//!
//! ```text
//! {"index":0,"time":1200345,"process":0,"type":"invoke","f":"write","key":"k3","value":7}
//! {"index":4,"time":2300000,"process":2,"type":"invoke","f":"cas","key":"k3","value":[7,9]}
//! {"index":5,"time":3300000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill"}}
//! ```
//!
//! Written exactly as above (`key` and `error` only when present). Read leniently, as the checker
//! reads the format: `index`, `time`, `f` and `value` may be missing (hand-written histories
//! leave out `index` and `time`; a missing value is `null`), and an integer key is read as its
//! decimal text.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::op::{EventType, OpKind};
use crate::process::Process;
use crate::value::Value;

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 0-based position in the history.
    #[serde(default)]
    pub index: u64,
    /// Monotonic nanoseconds since the run started.
    #[serde(default)]
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// An [`OpKind`] name for client events; `start` or `stop` for the nemesis.
    #[serde(default)]
    pub f: String,
    /// Absent: the single default key.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "key_text"
    )]
    pub key: Option<String>,
    /// The value read, written or appended, `[expected, new]` for a cas (see [`value_json`]),
    /// or an object describing a fault.
    #[serde(default)]
    pub value: serde_json::Value,
    /// Why a `fail` failed or an `info` is unknown.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The `value` field of a client event: `value` itself, or `[expected, new]` for a cas (`value`
/// is then the expected value and `cas_new` the new one; `cas_new` is unused otherwise).
pub fn value_json(kind: OpKind, value: &Value, cas_new: &Value) -> serde_json::Value {
    match kind {
        OpKind::Cas => serde_json::Value::Array(vec![value.to_json(), cas_new.to_json()]),
        _ => value.to_json(),
    }
}

/// Each record of a `history.jsonl` text with its 1-based line number, skipping blank lines.
/// A line that does not parse is an `Err` in its place.
pub fn records(text: &str) -> impl Iterator<Item = (usize, serde_json::Result<Record>)> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, serde_json::from_str(line)))
}

/// A key is a string; an integer is read as its decimal text.
fn key_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a key (a string)")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"index":0,"time":1200345,"process":0,"type":"invoke","f":"write","key":"k3","value":7}
{"index":4,"time":2300000,"process":2,"type":"invoke","f":"cas","key":"k3","value":[7,9]}
{"index":5,"time":3300000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill"}}
{"index":6,"time":1002300000,"process":2,"type":"info","f":"cas","key":"k3","value":[7,9],"error":"timeout after 1000 ms"}"#;

    #[test]
    fn records_write_back_exactly_the_lines_they_were_read_from() {
        for (line, record) in EXAMPLE.lines().zip(records(EXAMPLE)) {
            let record = record.1.unwrap();
            assert_eq!(serde_json::to_string(&record).unwrap(), line);
        }
    }

    #[test]
    fn a_cas_value_is_expected_then_new() {
        let cas = value_json(OpKind::Cas, &Value::Int(7), &Value::Int(9));
        assert_eq!(cas, serde_json::json!([7, 9]));
        let write = value_json(OpKind::Write, &Value::Int(7), &Value::Nil);
        assert_eq!(write, serde_json::json!(7));
    }

    #[test]
    fn reading_is_lenient_where_the_checker_is() {
        let text = "\n{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":12}\n\nnot json\n";
        let got: Vec<(usize, bool)> = records(text).map(|(n, r)| (n, r.is_ok())).collect();
        assert_eq!(got, [(2, true), (4, false)]);
        let r = records(text).next().unwrap().1.unwrap();
        assert_eq!((r.index, r.time), (0, 0));
        assert_eq!(r.key.as_deref(), Some("12"));
        assert_eq!(r.value, serde_json::Value::Null);
        let no_key: Record =
            serde_json::from_str(r#"{"process":1,"type":"ok","f":"read","key":null}"#).unwrap();
        assert_eq!(no_key.key, None);
    }
}
