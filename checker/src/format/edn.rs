//! Jepsen's EDN histories: one op map per line, or one vector or list of op maps.
//!
//! ```text
//! {:type :invoke, :f :cas, :value [1 4], :process 3, :time 1234, :index 7}
//! {:type :ok,     :f :read, :value 4,    :process 0}
//! ```
//!
//! Fields used: `:process` (an integer; a keyword, such as `:nemesis`, is ignored), `:type`
//! (`:invoke :ok :fail :info`), `:f` (`:read :write :cas :append`, or `:get :put`; `:acquire
//! :release` for a mutex; `:txn` for a multi-register), `:value` (`nil`, an integer, a string,
//! `[from to]` for cas, `[[:read :x nil] [:write :y 2]]` for a txn, see [`crate::txn`]) and an
//! optional `:key`. Other fields are skipped. Values of `jepsen.independent` tests, `[key value]`
//! tuples (`[key [from to]]` for cas, `[key [[:read :x nil] ...]]` for a txn), are split into
//! key and value when there is no `:key` field.
//!
//! The reader below understands the EDN that Jepsen writes (maps, vectors, lists, sets, strings,
//! keywords, symbols, numbers, `nil`, booleans, tagged literals such as `#jepsen.history.Op{..}`,
//! comments and `#_` discards); it does not aim to be a complete EDN implementation.

use std::borrow::Cow;
use std::path::Path;

pub(crate) use super::edn_txn::event_value;
use crate::error::{excerpt, Error, Result};
use crate::history::{Builder, Event, EventType, EventValue, Process, RawValue};

/// An EDN form.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Edn<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    /// Any number that is not an `i64` (floats, bigints, ratios), kept as text.
    Number(&'a str),
    Str(Cow<'a, str>),
    /// Without the leading `:`.
    Keyword(&'a str),
    Symbol(&'a str),
    Char(&'a str),
    Vector(Vec<Edn<'a>>),
    List(Vec<Edn<'a>>),
    Set(Vec<Edn<'a>>),
    Map(Vec<(Edn<'a>, Edn<'a>)>),
}

impl<'a> Edn<'a> {
    /// A keyword's or string's text.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) => Some(s),
            Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn scalar(&self) -> Option<RawValue<'a>> {
        Some(match self {
            Edn::Nil => RawValue::Nil,
            Edn::Int(i) => RawValue::Int(*i),
            Edn::Str(s) => RawValue::Str(s.clone()),
            _ => return None,
        })
    }

    pub(crate) fn to_event_value(&self) -> EventValue<'a> {
        if let Some(v) = self.scalar() {
            return EventValue::Scalar(v);
        }
        if let Edn::Vector(xs) | Edn::List(xs) = self {
            if let [a, b] = xs.as_slice() {
                if let (Some(a), Some(b)) = (a.scalar(), b.scalar()) {
                    return EventValue::Pair(a, b);
                }
            }
        }
        EventValue::Other
    }
}

/// A reader over EDN text that tracks line numbers.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// 1-based line of `pos`.
    pub line: usize,
    /// Byte offset where that line starts, for columns in errors.
    line_start: usize,
}

type Expected = &'static str;

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips whitespace, commas and `;` comments.
    pub(crate) fn skip_ws(&mut self) {
        let b = self.bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b';' => {
                    while self.pos < b.len() && b[self.pos] != b'\n' {
                        self.pos += 1
                    }
                }
                _ => break,
            }
        }
    }

    /// Skips whitespace, comments and `#_` discarded forms (which may stand wherever a form
    /// may, even just before a closing bracket).
    pub(crate) fn skip_ws_and_discards(&mut self) -> std::result::Result<(), Expected> {
        loop {
            self.skip_ws();
            if !self.bytes()[self.pos.min(self.text.len())..].starts_with(b"#_") {
                return Ok(());
            }
            self.pos += 2;
            self.skip_ws_and_discards()?;
            self.read()?; // discarded
        }
    }

    /// 1-based column of `pos`, in characters.
    pub(crate) fn column(&self) -> usize {
        let end = self.pos.min(self.text.len());
        self.text[self.line_start..end].chars().count() + 1
    }

    /// The line `pos` is on, shortened around `pos` if long, for error messages.
    pub(crate) fn current_line(&self) -> String {
        let line = self.text[self.line_start..]
            .split('\n')
            .next()
            .unwrap_or("");
        let col = self.column();
        if col <= 40 {
            return excerpt(line);
        }
        let tail: String = line.chars().skip(col - 30).collect();
        format!("`…{}", &excerpt(&tail)[1..])
    }

    fn is_delim(c: u8) -> bool {
        matches!(
            c,
            b' ' | b'\t'
                | b'\r'
                | b'\n'
                | b','
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'"'
                | b';'
        )
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        let b = self.bytes();
        while self.pos < b.len() && !Self::is_delim(b[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Reads one form; the caller has skipped whitespace.
    pub(crate) fn read(&mut self) -> std::result::Result<Edn<'a>, Expected> {
        let Some(c) = self.peek() else {
            return Err("a value, not the end of the file");
        };
        match c {
            b'{' => {
                self.pos += 1;
                self.read_map()
            }
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.read_seq(b']')?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.read_seq(b')')?))
            }
            b'"' => self.read_string(),
            b'#' => {
                self.pos += 1;
                self.read_dispatch()
            }
            b':' => {
                self.pos += 1;
                let t = self.token();
                if t.is_empty() {
                    return Err("a keyword name after `:`");
                }
                Ok(Edn::Keyword(t))
            }
            b'\\' => {
                self.pos += 1;
                let start = self.pos;
                self.pos += 1; // at least one char, even a delimiter
                self.token();
                Ok(Edn::Char(&self.text[start..self.pos.min(self.text.len())]))
            }
            b')' | b']' | b'}' => Err("a value, not a closing bracket"),
            _ => Ok(Self::atom(self.token())),
        }
    }

    /// A map's forms, after its `{`: keys and values alternate.
    fn read_map(&mut self) -> std::result::Result<Edn<'a>, Expected> {
        let items = self.read_seq(b'}')?;
        if items.len() % 2 != 0 {
            return Err("a map with an even number of forms");
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    /// What follows a `#`: a set `#{...}`, a discarded form `#_`, or a tagged literal
    /// `#tag form` (the tag is dropped).
    fn read_dispatch(&mut self) -> std::result::Result<Edn<'a>, Expected> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(Edn::Set(self.read_seq(b'}')?))
            }
            Some(b'_') => {
                self.pos -= 1; // back to the `#`
                self.skip_ws_and_discards()?;
                self.read()
            }
            Some(b'#') => {
                // A symbolic value: ##Inf, ##-Inf, ##NaN.
                self.pos += 1;
                Ok(Edn::Number(self.token()))
            }
            _ => {
                let tag = self.token();
                if tag.is_empty() {
                    return Err("a tag or `{` after `#`");
                }
                self.skip_ws();
                self.read()
            }
        }
    }

    /// A token that is not a string, keyword or char: nil, a boolean, a number or a symbol.
    fn atom(t: &'a str) -> Edn<'a> {
        match t {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => {
                let first = t.as_bytes()[0];
                let numeric = first.is_ascii_digit()
                    || ((first == b'-' || first == b'+')
                        && t.len() > 1
                        && t.as_bytes()[1].is_ascii_digit());
                if numeric {
                    match t.parse::<i64>() {
                        Ok(i) => Edn::Int(i),
                        Err(_) => Edn::Number(t),
                    }
                } else {
                    Edn::Symbol(t)
                }
            }
        }
    }

    fn read_seq(&mut self, close: u8) -> std::result::Result<Vec<Edn<'a>>, Expected> {
        let mut items = Vec::new();
        loop {
            self.skip_ws_and_discards()?;
            match self.peek() {
                None => return Err("a closing bracket before the end of the file"),
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b')' | b']' | b'}') => return Err("the matching closing bracket"),
                Some(_) => items.push(self.read()?),
            }
        }
    }

    fn read_string(&mut self) -> std::result::Result<Edn<'a>, Expected> {
        self.pos += 1; // opening quote
        let b = self.bytes();
        let start = self.pos;
        // The common case: no escapes and no newlines, one tight scan to the closing quote.
        let plain_end = b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c == b'\n')
            .map(|i| start + i);
        if let Some(end) = plain_end.filter(|&e| b[e] == b'"') {
            self.pos = end + 1;
            return Ok(Edn::Str(Cow::Borrowed(&self.text[start..end])));
        }
        let mut owned = String::new();
        let mut run = start;
        while self.pos < b.len() {
            match b[self.pos] {
                b'"' => {
                    owned.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(Edn::Str(Cow::Owned(owned)));
                }
                b'\\' => {
                    owned.push_str(&self.text[run..self.pos]);
                    let (c, len) = self.escape()?;
                    owned.push(c);
                    self.pos += len;
                    run = self.pos;
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                    self.line_start = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        Err("a closing `\"` before the end of the file")
    }
}

impl<'a> Reader<'a> {
    /// The escape at `pos` (a `\\`) inside a string: the char and the escape's length in bytes.
    /// Those Clojure's `pr-str` writes: `\\n \\t \\r \\b \\f \\" \\\\` and `\\uXXXX`.
    fn escape(&self) -> std::result::Result<(char, usize), Expected> {
        const BAD: Expected = "a string escape such as \\n, \\t, \\\", \\\\ or \\u00e9";
        let b = self.bytes();
        Ok(match b.get(self.pos + 1).copied() {
            Some(b'n') => ('\n', 2),
            Some(b't') => ('\t', 2),
            Some(b'r') => ('\r', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'u') => {
                let hex = self.text.get(self.pos + 2..self.pos + 6).ok_or(BAD)?;
                let code = u32::from_str_radix(hex, 16).map_err(|_| BAD)?;
                (char::from_u32(code).unwrap_or('\u{fffd}'), 6)
            }
            _ => return Err(BAD),
        })
    }
}

/// What an op map must look like, for error messages.
const OP_MAP: &str = "an op map such as {:process 0, :type :invoke, :f :read, :value nil}";

/// The fields of an op map that the checker uses.
#[derive(Default)]
struct OpFields<'a> {
    process: Option<Edn<'a>>,
    kind: Option<Edn<'a>>,
    f: Option<Edn<'a>>,
    value: Option<Edn<'a>>,
    key: Option<Edn<'a>>,
}

impl<'a> Reader<'a> {
    /// Reads an op map (optionally tagged, `#jepsen.history.Op{...}`) field by field, without
    /// building the map: the hot path of EDN histories.
    fn read_op(&mut self) -> std::result::Result<OpFields<'a>, Expected> {
        if self.peek() == Some(b'#') {
            self.pos += 1;
            if self.token().is_empty() {
                return Err(OP_MAP);
            }
            self.skip_ws();
        }
        if self.peek() != Some(b'{') {
            return Err(OP_MAP);
        }
        self.pos += 1;
        let mut op = OpFields::default();
        loop {
            self.skip_ws_and_discards()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(op);
                }
                None => return Err("a closing `}` before the end of the file"),
                Some(_) => {}
            }
            let key = self.read()?;
            self.skip_ws_and_discards()?;
            if matches!(self.peek(), Some(b'}') | None) {
                return Err("a map with an even number of forms");
            }
            let value = self.read()?;
            let slot = match key {
                Edn::Keyword("process") => &mut op.process,
                Edn::Keyword("type") => &mut op.kind,
                Edn::Keyword("f") => &mut op.f,
                Edn::Keyword("value") => &mut op.value,
                Edn::Keyword("key") => &mut op.key,
                _ => continue,
            };
            *slot = Some(value);
        }
    }
}

/// Turns one op map into an event.
fn event(op: OpFields<'_>, line: usize) -> std::result::Result<Event<'_>, String> {
    let process = match op.process {
        Some(Edn::Int(p)) if p >= 0 => Process::Client(p as u64),
        Some(Edn::Keyword(_)) => Process::Nemesis, // :nemesis and Jepsen's other named processes
        Some(_) => {
            return Err(format!(
                "`:process` to be a number or a keyword in {OP_MAP}"
            ))
        }
        None => return Err(format!("a `:process` in {OP_MAP}")),
    };
    let kind = op
        .kind
        .as_ref()
        .and_then(Edn::name)
        .and_then(EventType::parse)
        .ok_or_else(|| "`:type` to be one of :invoke, :ok, :fail, :info".to_string())?;
    let f = match op.f {
        Some(Edn::Keyword(f) | Edn::Symbol(f)) => f,
        Some(Edn::Str(Cow::Borrowed(f))) => f,
        _ if process == Process::Nemesis => "",
        _ => return Err(format!("an `:f` keyword in {OP_MAP}")),
    };
    let raw = op.value.unwrap_or(Edn::Nil);
    let (key, value) = match op.key {
        Some(k) => (Some(key_name(&k)), &raw),
        None => split_independent(f, &raw),
    };
    let value = event_value(f, kind, value)?;
    Ok(Event {
        line,
        process,
        kind,
        f,
        key,
        value,
    })
}

pub(crate) fn key_name<'a>(k: &Edn<'a>) -> Cow<'a, str> {
    match k {
        Edn::Int(i) => Cow::Owned(i.to_string()),
        Edn::Str(s) => s.clone(),
        Edn::Keyword(s) | Edn::Symbol(s) | Edn::Number(s) => Cow::Borrowed(s),
        other => Cow::Owned(format!("{other:?}")),
    }
}

/// `jepsen.independent` tuples: `[k v]` for read/write/append/acquire/release, `[k [a b]]` for
/// cas, `[k [[:read :x nil] ...]]` for txn. Returns the key, if it is a tuple, and the value.
fn split_independent<'r, 'a>(f: &str, raw: &'r Edn<'a>) -> (Option<Cow<'a, str>>, &'r Edn<'a>) {
    if let Edn::Vector(xs) = raw {
        if let [k, v] = xs.as_slice() {
            let is_key = matches!(k, Edn::Int(_) | Edn::Str(_) | Edn::Keyword(_));
            let nested = matches!(v, Edn::Vector(_) | Edn::List(_));
            // cas and txn values are vectors already, so only a nested one is a tuple (a txn's
            // first element is a micro-op, never a key).
            let tuple = if f == "cas" || f == "txn" {
                nested
            } else {
                !nested
            };
            if is_key && tuple {
                return (Some(key_name(k)), v);
            }
        }
    }
    (None, raw)
}

/// Reads every op in `text` into `builder`: op maps one after another (one a line, as Jepsen's
/// store writes them), or one vector or list of op maps (as Knossos's CLI also reads them).
pub(crate) fn parse(path: &Path, text: &str, builder: &mut Builder) -> Result<()> {
    let mut r = Reader::new(text);
    let at = |r: &Reader<'_>, expected: String| Error::Parse {
        path: path.to_path_buf(),
        line: r.line,
        column: Some(r.column()),
        expected,
        found: r.current_line(),
    };
    r.skip_ws_and_discards().map_err(|e| at(&r, e.into()))?;
    let close = match r.peek() {
        Some(b'[') => Some((b']', "vector")),
        Some(b'(') => Some((b')', "list")),
        _ => None,
    };
    if close.is_some() {
        r.pos += 1;
    }
    loop {
        r.skip_ws_and_discards().map_err(|e| at(&r, e.into()))?;
        match (r.peek(), close) {
            (None, None) => return Ok(()),
            (None, Some((c, what))) => {
                return Err(at(
                    &r,
                    format!("`{}` to close the {what} of ops", c as char),
                ));
            }
            (Some(c), Some((close, what))) if c == close => {
                r.pos += 1;
                r.skip_ws_and_discards().map_err(|e| at(&r, e.into()))?;
                if r.peek().is_some() {
                    return Err(at(&r, format!("nothing after the {what} of ops")));
                }
                return Ok(());
            }
            _ => {}
        }
        let (line, column, start) = (r.line, r.column(), r.pos);
        let fields = r.read_op().map_err(|e| at(&r, e.into()))?;
        let ev = event(fields, line).map_err(|expected| Error::Parse {
            path: path.to_path_buf(),
            line,
            column: Some(column),
            expected,
            found: excerpt(&text[start..r.pos]),
        })?;
        builder.push(ev)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{MicroKind, RawMicro};

    fn read(s: &str) -> Edn<'_> {
        let mut r = Reader::new(s);
        r.skip_ws();
        r.read().unwrap()
    }

    #[test]
    fn reads_the_forms_jepsen_writes() {
        assert_eq!(read("nil"), Edn::Nil);
        assert_eq!(read("-12"), Edn::Int(-12));
        assert_eq!(read(":timed-out"), Edn::Keyword("timed-out"));
        assert_eq!(read(r#""a\"b""#), Edn::Str(Cow::Owned("a\"b".into())));
        assert_eq!(read("[1 2]"), Edn::Vector(vec![Edn::Int(1), Edn::Int(2)]));
        assert_eq!(read("#{1}"), Edn::Set(vec![Edn::Int(1)]));
        assert_eq!(
            read("#jepsen.history.Op{:f :read}"),
            Edn::Map(vec![(Edn::Keyword("f"), Edn::Keyword("read"))])
        );
        assert_eq!(read("#_ 1 2"), Edn::Int(2));
        assert_eq!(read("1.5"), Edn::Number("1.5"));
    }

    #[test]
    fn independent_tuples_split_into_key_and_value() {
        let split = |f: &str, v: &Edn<'static>| {
            let (k, v) = split_independent(f, v);
            (k, event_value(f, EventType::Ok, v).unwrap())
        };
        let v = read("[3 [1 2]]");
        assert_eq!(
            split("cas", &v),
            (
                Some("3".into()),
                EventValue::Pair(RawValue::Int(1), RawValue::Int(2))
            )
        );
        let v = read("[1 2]");
        assert_eq!(
            split("cas", &v),
            (None, EventValue::Pair(RawValue::Int(1), RawValue::Int(2)))
        );
        assert_eq!(
            split("write", &v),
            (Some("1".into()), EventValue::Scalar(RawValue::Int(2)))
        );
        let read_x = |v| RawMicro {
            f: MicroKind::Read,
            register: "x".into(),
            value: v,
        };
        let v = read("[7 [[:read :x 1]]]");
        assert_eq!(
            split("txn", &v),
            (
                Some("7".into()),
                EventValue::Txn(vec![read_x(RawValue::Int(1))])
            )
        );
        let v = read("[[:read :x nil] [:r :x 2]]");
        assert_eq!(
            split("txn", &v),
            (
                None,
                EventValue::Txn(vec![read_x(RawValue::Nil), read_x(RawValue::Int(2))])
            )
        );
        let e = event_value("txn", EventType::Invoke, &read("[[:append :x 1]]")).unwrap_err();
        assert!(
            e.contains("is `append`, but a multi-register has only"),
            "{e}"
        );
        let info = event_value("txn", EventType::Info, &read(":timed-out")).unwrap();
        assert_eq!(info, EventValue::Other);
    }

    #[test]
    fn a_bad_form_names_its_line() {
        let mut b = Builder::new(Path::new("h.edn"), crate::format::Format::Edn);
        let text = "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0 :type}\n";
        let e = parse(Path::new("h.edn"), text, &mut b).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("h.edn:2: expected a map with an even number"),
            "{msg}"
        );
    }
}
