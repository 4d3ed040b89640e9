//! riptide's own history format: one JSON object a line (see `docs/history-format.md`).
//!
//! ```text
//! {"index":0,"time":1200345,"process":0,"type":"invoke","f":"write","key":"k3","value":7}
//! {"index":5,"time":3300000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill"}}
//! ```
//!
//! Used fields: `process` (an integer; the string `"nemesis"` marks an event to ignore), `type`, `f`, `key` (optional: absent means the single default key) and `value`
//! (`null`, an integer, a string, or `[expected, new]` for cas). `index`, `time` and `error` are
//! informative: the checker uses line order, as the format says.
//!
//! Lines are decoded with serde into borrowed fields, with hand-written visitors for `process` and
//! `value`, so that a line costs no allocation beyond the strings it really holds.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use riptide_history::Record;

use crate::error::{excerpt, Error, Result};
use crate::history::{Builder, Event, EventType, EventValue, Process, RawValue};

#[derive(Deserialize)]
struct Line<'a> {
    process: Process,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Option<JsonKey<'a>>,
    #[serde(default, borrow)]
    value: JsonValue<'a>,
}

/// A key: a string (integers are accepted and turned into their decimal text).
struct JsonKey<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonKey<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonKey<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key (a string)")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(JsonKey(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(JsonKey(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(JsonKey(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                Ok(JsonKey(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `value`: decoded straight into an [`EventValue`], borrowing strings from the line.
#[derive(Default)]
struct JsonValue<'a>(Option<EventValue<'a>>);

/// A scalar inside a cas pair (`None` for anything else).
struct Scalar<'a>(Option<RawValue<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match d.deserialize_any(ValueVisitor(std::marker::PhantomData))?.0 {
            Some(EventValue::Scalar(v)) => Ok(Scalar(Some(v))),
            _ => Ok(Scalar(None)),
        }
    }
}

struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = JsonValue<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, an integer, a string or [expected, new]")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Scalar(RawValue::Nil))))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(JsonValue(Some(EventValue::Other))),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Scalar(RawValue::Int(v)))))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Other)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Other)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Scalar(RawValue::Str(
            Cow::Borrowed(v),
        )))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(JsonValue(Some(EventValue::Scalar(RawValue::Str(
            Cow::Owned(v.to_string()),
        )))))
    }
    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let a = seq.next_element::<Scalar<'a>>()?;
        let b = if a.is_some() {
            seq.next_element::<Scalar<'a>>()?
        } else {
            None
        };
        let mut extra = false;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            extra = true;
        }
        Ok(JsonValue(Some(match (a, b, extra) {
            (Some(Scalar(Some(a))), Some(Scalar(Some(b))), false) => EventValue::Pair(a, b),
            _ => EventValue::Other,
        })))
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonValue(Some(EventValue::Other)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

const LINE: &str =
    r#"a JSON object such as {"process":0,"type":"invoke","f":"read","key":"k","value":null}"#;

/// One line's event, before it has its place in the history.
pub(crate) struct LineEvent<'a> {
    pub process: Process,
    pub kind: EventType,
    pub f: Cow<'a, str>,
    pub key: Option<Cow<'a, str>>,
    pub value: EventValue<'a>,
}

/// Reads line `line_no` (1-based), `raw`: `None` for a blank line.
pub(crate) fn read_line<'a>(
    path: &Path,
    line_no: usize,
    raw: &'a str,
) -> Result<Option<LineEvent<'a>>> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    if let Some(ev) = super::jsonl_fast::read(raw) {
        return Ok(Some(ev));
    }
    let bad = |why: String| Error::Parse {
        column: None,
        path: path.to_path_buf(),
        line: line_no,
        expected: why,
        found: excerpt(raw),
    };
    let line: Line<'a> = serde_json::from_str(raw).map_err(|e| bad(format!("{LINE} ({e})")))?;
    let kind = EventType::parse(&line.kind)
        .ok_or_else(|| bad("\"type\" to be one of invoke, ok, fail, info".into()))?;
    Ok(Some(LineEvent {
        process: line.process,
        kind,
        f: line.f,
        key: line.key.map(|k| k.0),
        value: line.value.0.unwrap_or(EventValue::Scalar(RawValue::Nil)),
    }))
}

/// Reads every line of `text` into `builder`.
pub(crate) fn parse(path: &Path, text: &str, builder: &mut Builder) -> Result<()> {
    for (i, raw) in text.lines().enumerate() {
        let Some(ev) = read_line(path, i + 1, raw)? else {
            continue;
        };
        builder.push(Event {
            line: i + 1,
            process: ev.process,
            kind: ev.kind,
            f: &ev.f,
            key: ev.key,
            value: ev.value,
        })?;
    }
    Ok(())
}

/// Feeds records already parsed (each with its 1-based line) to `builder`, exactly as [`parse`]
/// feeds the lines they were read from.
pub(crate) fn push_records<'r>(
    records: impl IntoIterator<Item = (usize, &'r Record)>,
    builder: &mut Builder,
) -> Result<()> {
    for (line, record) in records {
        builder.push(Event {
            line,
            process: record.process,
            kind: record.event_type,
            f: &record.f,
            key: record.key.as_deref().map(Cow::Borrowed),
            value: event_value(&record.value),
        })?;
    }
    Ok(())
}

/// A record's `value` as an [`EventValue`]: what [`ValueVisitor`] makes of the same JSON.
fn event_value(v: &serde_json::Value) -> EventValue<'_> {
    match v {
        serde_json::Value::Array(pair) => match pair.as_slice() {
            [a, b] => match (scalar(a), scalar(b)) {
                (Some(a), Some(b)) => EventValue::Pair(a, b),
                _ => EventValue::Other,
            },
            _ => EventValue::Other,
        },
        v => scalar(v).map_or(EventValue::Other, EventValue::Scalar),
    }
}

/// Null, an integer that fits an `i64`, or a string.
fn scalar(v: &serde_json::Value) -> Option<RawValue<'_>> {
    match v {
        serde_json::Value::Null => Some(RawValue::Nil),
        serde_json::Value::Number(n) => n.as_i64().map(RawValue::Int),
        serde_json::Value::String(s) => Some(RawValue::Str(Cow::Borrowed(s))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::history::Value;

    fn load(text: &str) -> Result<crate::history::History> {
        let mut b = Builder::new(Path::new("h.jsonl"), Format::Jsonl);
        parse(Path::new("h.jsonl"), text, &mut b)?;
        Ok(b.finish())
    }

    #[test]
    fn reads_the_documented_example() {
        let text = r#"{"index":0,"time":1200345,"process":0,"type":"invoke","f":"write","key":"k3","value":7}
{"index":1,"time":1300112,"process":1,"type":"invoke","f":"read","key":"k3","value":null}
{"index":2,"time":2104551,"process":0,"type":"ok","f":"write","key":"k3","value":7}
{"index":3,"time":2233000,"process":1,"type":"ok","f":"read","key":"k3","value":7}
{"index":4,"time":2300000,"process":2,"type":"invoke","f":"cas","key":"k3","value":[7,9]}
{"index":5,"time":3300000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[2]}}
{"index":6,"time":1002300000,"process":2,"type":"info","f":"cas","key":"k3","value":[7,9],"error":"timeout after 1000 ms"}
"#;
        let h = load(text).unwrap();
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.stats.ignored, 1);
        assert_eq!(h.stats.info, 1);
        assert_eq!(h.keys, vec!["k3".to_string()]);
        let cas = h.ops[2];
        assert_eq!(cas.complete, crate::history::Op::NEVER);
        assert_eq!(h.values.get(cas.value), &Value::Int(7));
        assert_eq!(h.values.get(cas.cas_new), &Value::Int(9));
        let read = h.ops[1];
        assert_eq!((read.invoke, read.complete), (1, 3));
        assert_eq!(h.values.get(read.value), &Value::Int(7));
    }

    #[test]
    fn an_unreadable_line_names_file_line_and_expectation() {
        let text =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\nnot json\n";
        let msg = load(text).unwrap_err().to_string();
        assert!(
            msg.starts_with("h.jsonl:3: expected a JSON object"),
            "{msg}"
        );
        assert!(msg.contains("found `not json`"), "{msg}");
    }

    #[test]
    fn a_process_must_be_a_number_or_the_nemesis() {
        let text = r#"{"process":"worker-1","type":"invoke","f":"read","value":null}"#;
        let msg = load(text).unwrap_err().to_string();
        assert!(msg.contains("neither a number nor \"nemesis\""), "{msg}");
    }

    #[test]
    fn a_bad_type_is_named() {
        let text = r#"{"process":0,"type":"begin","f":"read","value":null}"#;
        let msg = load(text).unwrap_err().to_string();
        assert!(
            msg.contains("h.jsonl:1: expected \"type\" to be one of"),
            "{msg}"
        );
    }
}
