//! A fast path for the lines riptide writes: a flat JSON object of integers, plain strings,
//! `null` and `[a, b]` pairs, read byte by byte with no allocation.
//!
//! It either gives exactly the event serde's reading ([`super::jsonl::read_line`]) gives, or
//! declines (`None`) and leaves the line to serde: anything it is not sure of (an escape in a
//! string, a float, a nested value, a duplicate or missing field, a number that does not fit,
//! an unknown `type`, text after the object) is declined, so every error, and every unusual
//! line, is still serde's. `tests` compares the two on lines built to probe the differences.

use std::borrow::Cow;

use super::jsonl::LineEvent;
use crate::history::{EventType, EventValue, Process, RawValue};

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// A scalar as the fast path reads it.
enum Scalar<'a> {
    Nil,
    /// An integer (`-?digits`, no leading zero), as its text.
    Int(&'a str),
    Str(&'a str),
    Bool,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() && matches!(bytes[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// Skips whitespace and takes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.text.as_bytes().get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// A string with no escape and no control character.
    fn string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() {
            match bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some(&self.text[start..self.at - 1]);
                }
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        None
    }

    fn scalar(&mut self) -> Option<Scalar<'a>> {
        self.skip_ws();
        let rest = &self.text[self.at..];
        let word = |w: &str, s: Scalar<'a>, c: &mut Self| {
            c.at += w.len();
            Some(s)
        };
        match rest.as_bytes().first()? {
            b'"' => self.string().map(Scalar::Str),
            b'n' if rest.starts_with("null") => word("null", Scalar::Nil, self),
            b't' if rest.starts_with("true") => word("true", Scalar::Bool, self),
            b'f' if rest.starts_with("false") => word("false", Scalar::Bool, self),
            _ => {
                let bytes = rest.as_bytes();
                let sign = usize::from(bytes[0] == b'-');
                let digits = bytes[sign..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let end = sign + digits;
                let leading_zero = digits > 1 && bytes[sign] == b'0';
                let more = bytes
                    .get(end)
                    .is_some_and(|b| matches!(b, b'.' | b'e' | b'E'));
                if digits == 0 || leading_zero || more || (sign == 1 && bytes[1] == b'0') {
                    return None;
                }
                self.at += end;
                Some(Scalar::Int(&rest[..end]))
            }
        }
    }
}

/// A scalar as an event's value: what serde's visitor makes of it (an integer must fit an
/// `i64`; booleans are declined, serde reads them as "other").
fn raw(s: Scalar<'_>) -> Option<RawValue<'_>> {
    match s {
        Scalar::Nil => Some(RawValue::Nil),
        Scalar::Int(t) => t.parse::<i64>().ok().map(RawValue::Int),
        Scalar::Str(t) => Some(RawValue::Str(Cow::Borrowed(t))),
        Scalar::Bool => None,
    }
}

/// `value`: a scalar or a pair of scalars.
fn value<'a>(c: &mut Cursor<'a>) -> Option<EventValue<'a>> {
    if !c.eat(b'[') {
        return c.scalar().and_then(raw).map(EventValue::Scalar);
    }
    let a = c.scalar().and_then(raw)?;
    if !c.eat(b',') {
        return None;
    }
    let b = c.scalar().and_then(raw)?;
    c.eat(b']').then_some(EventValue::Pair(a, b))
}

/// The event of `line`, or `None` to leave the line to serde.
pub(crate) fn read(line: &str) -> Option<LineEvent<'_>> {
    let mut c = Cursor { text: line, at: 0 };
    if !c.eat(b'{') {
        return None;
    }
    let (mut process, mut kind, mut f, mut key, mut val) = (None, None, None, None, None);
    if !c.eat(b'}') {
        loop {
            let name = c.string()?;
            if !c.eat(b':') {
                return None;
            }
            match name {
                "process" if process.is_none() => {
                    process = Some(match c.scalar()? {
                        Scalar::Int(t) if !t.starts_with('-') => Process::Client(t.parse().ok()?),
                        Scalar::Str("nemesis") => Process::Nemesis,
                        _ => return None,
                    })
                }
                "type" if kind.is_none() => kind = Some(EventType::parse(c.string()?)?),
                "f" if f.is_none() => f = Some(c.string()?),
                "key" if key.is_none() => key = Some(c.string()?),
                "value" if val.is_none() => val = Some(value(&mut c)?),
                "process" | "type" | "f" | "key" | "value" => return None,
                _ => {
                    c.scalar()?;
                }
            }
            if c.eat(b'}') {
                break;
            }
            if !c.eat(b',') {
                return None;
            }
        }
    }
    c.skip_ws();
    if c.at != line.len() {
        return None;
    }
    Some(LineEvent {
        process: process?,
        kind: kind?,
        f: Cow::Borrowed(f.unwrap_or("")),
        key: key.map(Cow::Borrowed),
        value: val.unwrap_or(EventValue::Scalar(RawValue::Nil)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::jsonl::read_line;
    use std::path::Path;

    fn same(line: &str) {
        let slow = read_line(Path::new("h"), 1, line);
        let fast = read(line);
        match (&slow, fast) {
            (Ok(Some(s)), Some(f)) => {
                assert_eq!(
                    (s.process, s.kind, &s.f, &s.key, &s.value),
                    (f.process, f.kind, &f.f, &f.key, &f.value),
                    "{line}"
                );
            }
            (_, None) => {}
            (slow, Some(_)) => panic!("fast path read {line:?}, serde said {:?}", slow.is_ok()),
        }
    }

    #[test]
    fn the_fast_path_agrees_with_serde_or_declines() {
        let base = r#"{"index":3,"time":-12,"process":7,"type":"ok","f":"cas","key":"k1","value":[1,"a"]}"#;
        assert!(read(base).is_some());
        same(base);
        let lines = [
            r#"{"process":0,"type":"invoke","f":"read","key":"k","value":null}"#,
            r#" { "process" : 0 , "type":"invoke" ,"f":"write","value": -5 } "#,
            r#"{"process":"nemesis","type":"info","f":"start","value":{"fault":"kill"}}"#,
            r#"{"process":"worker","type":"invoke","f":"read"}"#,
            r#"{"process":-1,"type":"invoke","f":"read"}"#,
            r#"{"process":01,"type":"invoke","f":"read"}"#,
            r#"{"process":1.0,"type":"invoke","f":"read"}"#,
            r#"{"process":18446744073709551616,"type":"invoke","f":"read"}"#,
            r#"{"process":1,"process":2,"type":"invoke","f":"read"}"#,
            r#"{"process":1,"type":"begin","f":"read"}"#,
            r#"{"process":1,"f":"read"}"#,
            r#"{"type":"ok","f":"read"}"#,
            r#"{"process":1,"type":"ok","f":"read","value":9223372036854775808}"#,
            r#"{"process":1,"type":"ok","f":"read","value":-0}"#,
            r#"{"process":1,"type":"ok","f":"read","value":1e3}"#,
            r#"{"process":1,"type":"ok","f":"read","value":true}"#,
            r#"{"process":1,"type":"ok","f":"read","value":"a\"b"}"#,
            r#"{"process":1,"type":"ok","f":"read","value":"é"}"#,
            r#"{"process":1,"type":"ok","f":"cas","value":[1]}"#,
            r#"{"process":1,"type":"ok","f":"cas","value":[1,2,3]}"#,
            r#"{"process":1,"type":"ok","f":"cas","value":[null , "x" ]}"#,
            r#"{"process":1,"type":"ok","f":"read","key":7}"#,
            r#"{"process":1,"type":"ok","f":"read","key":"a\nb"}"#,
            r#"{"process":1,"type":"ok","f":"read","error":"x","extra":false}"#,
            r#"{"process":1,"type":"ok","f":"read","extra":[1]}"#,
            r#"{"process":1,"type":"ok","f":"read"} x"#,
            r#"{"process":1,"type":"ok","f":"read",}"#,
            r#"{"process":1,"type":"ok","f":"read""#,
            r#"{"process":1 "type":"ok"}"#,
            r#"{"pro\u0063ess":1,"type":"ok"}"#,
            "{\"process\":1,\"type\":\"ok\",\"f\":\"re\tad\"}",
            r#"{}"#,
        ];
        for line in lines {
            same(line);
        }
    }
}
