//! The value of a `txn` in EDN (Jepsen's files and its text log): a vector of micro-ops,
//! `[[:read :x nil] [:write :y 2]]`, read into [`RawMicro`]s, with an error that names the
//! micro-op that is not `[:read|:write REGISTER VALUE]`. What the micro-ops mean is in
//! [`crate::txn`].

use super::edn::{key_name, Edn};
use crate::history::{EventType, EventValue, TXN};
use crate::txn::{MicroKind, RawMicro};

/// An event's value for an op named `f`: a transaction for a `txn` invoke or `ok` (an error
/// if it is not one), otherwise what [`Edn::to_event_value`] makes of it. The value of a failed
/// or indeterminate txn is never used, so there anything goes.
pub(crate) fn event_value<'a>(
    f: &str,
    kind: EventType,
    v: &Edn<'a>,
) -> std::result::Result<EventValue<'a>, String> {
    if f != "txn" {
        return Ok(v.to_event_value());
    }
    match txn_value(v) {
        Ok(micros) => Ok(EventValue::Txn(micros)),
        Err(_) if matches!(kind, EventType::Fail | EventType::Info) => Ok(EventValue::Other),
        Err(why) => Err(format!("{TXN} as the value of `:txn`; {why}")),
    }
}

/// A transaction's micro-ops, `[[:read :x nil] [:write :y 2] ...]`, or what is wrong with it.
fn txn_value<'a>(v: &Edn<'a>) -> std::result::Result<Vec<RawMicro<'a>>, String> {
    let (Edn::Vector(micros) | Edn::List(micros)) = v else {
        return Err(format!("found {}", show(v)));
    };
    micros
        .iter()
        .map(|m| {
            let bad = || {
                format!(
                    "micro-op {} is not `[:read|:write REGISTER VALUE]`",
                    show(m)
                )
            };
            let (Edn::Vector(parts) | Edn::List(parts)) = m else {
                return Err(bad());
            };
            let [f, register, value] = parts.as_slice() else {
                return Err(bad());
            };
            let f = f.name().ok_or_else(bad)?;
            let f = MicroKind::parse(f).ok_or_else(|| {
                format!(
                    "micro-op {} is `{f}`, but a multi-register has only :read and :write",
                    show(m)
                )
            })?;
            let register = match register {
                Edn::Keyword(_) | Edn::Symbol(_) | Edn::Str(_) | Edn::Int(_) => key_name(register),
                _ => return Err(bad()),
            };
            let value = value.scalar().ok_or_else(bad)?;
            Ok(RawMicro { f, register, value })
        })
        .collect()
}

/// A form as EDN, in backticks, for messages.
fn show(v: &Edn<'_>) -> String {
    format!("`{}`", edn_text(v))
}

/// A form as EDN (a map only as `{..}`).
fn edn_text(v: &Edn<'_>) -> String {
    match v {
        Edn::Nil => "nil".to_string(),
        Edn::Bool(b) => b.to_string(),
        Edn::Int(i) => i.to_string(),
        Edn::Number(n) | Edn::Symbol(n) => n.to_string(),
        Edn::Str(s) => format!("{s:?}"),
        Edn::Keyword(k) => format!(":{k}"),
        Edn::Char(c) => format!("\\{c}"),
        Edn::Vector(xs) | Edn::List(xs) | Edn::Set(xs) => {
            let inner: Vec<String> = xs.iter().map(edn_text).collect();
            format!("[{}]", inner.join(" "))
        }
        Edn::Map(_) => "{..}".to_string(),
    }
}
