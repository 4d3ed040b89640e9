//! [`Value`]: what a key holds, as a history records it.

use std::fmt;

use serde::{Serialize, Serializer};

/// A value as it appears in a history: nothing, an integer or a string.
///
/// Serialises as JSON `null`, a number or a string. Register workloads use integers (unique per
/// key, so every read names the write it saw); the append workload uses strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// No value: a read of a key never written, or "no value yet".
    Nil,
    Int(i64),
    Str(String),
}

impl Value {
    /// Reads a value written on the command line: `nil`/`null`, an integer, or a string
    /// (quotes optional).
    pub fn parse_cli(s: &str) -> Value {
        let t = s.trim();
        if t == "nil" || t == "null" {
            Value::Nil
        } else if let Ok(i) = t.parse::<i64>() {
            Value::Int(i)
        } else if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
            Value::Str(t[1..t.len() - 1].to_string())
        } else {
            Value::Str(t.to_string())
        }
    }

    /// The value as JSON: `null`, a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

impl fmt::Display for Value {
    /// `nil`, `7`, `"ab"`: as a person writes it (and as `parse_cli` reads it back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_none(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Str(v) => s.serialize_str(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_values_read_back_what_display_writes() {
        for v in [Value::Nil, Value::Int(-3), Value::Str("a b".into())] {
            assert_eq!(Value::parse_cli(&v.to_string()), v);
        }
        assert_eq!(Value::parse_cli("null"), Value::Nil);
        assert_eq!(Value::parse_cli(" x "), Value::Str("x".into()));
    }

    #[test]
    fn json_is_null_a_number_or_a_string() {
        let all = [Value::Nil, Value::Int(7), Value::Str("x".into())];
        let json: Vec<serde_json::Value> = all.iter().map(Value::to_json).collect();
        assert_eq!(
            json,
            [
                serde_json::json!(null),
                serde_json::json!(7),
                serde_json::json!("x")
            ]
        );
        for v in &all {
            assert_eq!(serde_json::to_value(v).unwrap(), v.to_json());
        }
    }
}
