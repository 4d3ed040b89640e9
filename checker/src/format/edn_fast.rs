//! A fast path for the EDN that Porcupine's kv data uses, one op map a line in one fixed shape:
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
//! ```
//!
//! `:value` is `nil` or a string, keys and values have no escapes. [`events`] reads a whole
//! file of such lines into events with a few byte comparisons a field, and gives up (`None`) at
//! the first line of any other shape, before anything reaches the builder: the caller then parses
//! the file with the general reader ([`super::edn`]), which yields the same events for these
//! lines (`tests/edn_shapes.rs` compares the two) and names any error.

use std::borrow::Cow;

use crate::history::{Event, EventType, EventValue, Process, RawValue};

/// Every line's event, or `None` if some line is not of the one shape.
pub(crate) fn events(text: &str) -> Option<Vec<Event<'_>>> {
    let mut out = Vec::with_capacity(text.len() / 64);
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        out.push(event(line, i + 1)?);
    }
    Some(out)
}

/// One line, `{:process P, :type :T, :f :F, :key "K", :value V}` exactly.
fn event(line: &str, n: usize) -> Option<Event<'_>> {
    let mut rest = line.strip_prefix("{:process ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let process = rest[..digits].parse::<u64>().ok()?;
    rest = rest[digits..].strip_prefix(", :type :")?;
    let (kind, r) = word(rest)?;
    let kind = EventType::parse(kind)?;
    let (f, r) = word(r.strip_prefix(", :f :")?)?;
    let (key, r) = string(r.strip_prefix(", :key ")?)?;
    let r = r.strip_prefix(", :value ")?;
    let (value, r) = match r.strip_prefix("nil") {
        Some(r) => (RawValue::Nil, r),
        None => {
            let (s, r) = string(r)?;
            (RawValue::Str(Cow::Borrowed(s)), r)
        }
    };
    if r.trim_end() != "}" {
        return None;
    }
    Some(Event {
        line: n,
        process: Process::Client(process),
        kind,
        f,
        key: Some(Cow::Borrowed(key)),
        value: EventValue::Scalar(value),
    })
}

/// A keyword's name: lowercase letters and `-`, up to the next byte that is neither.
fn word(s: &str) -> Option<(&str, &str)> {
    let n = s
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || *b == b'-')
        .count();
    (n > 0).then(|| s.split_at(n))
}

/// A string literal with no escapes: its contents and what follows the closing quote.
fn string(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('"')?;
    let end = body.bytes().position(|b| b == b'"' || b == b'\\')?;
    (body.as_bytes()[end] == b'"').then(|| (&body[..end], &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::format::Format;
    use crate::history::{Builder, History};
    use crate::Value;

    /// The history the general EDN reader builds from `text`, as Porcupine kv data.
    fn general(text: &str) -> crate::error::Result<History> {
        let path = Path::new("x.txt");
        let mut b = Builder::new(path, Format::PorcupineKv);
        b.set_default_initial(Value::Str(String::new()));
        crate::format::edn::parse(path, text, &mut b)?;
        Ok(b.finish())
    }

    fn fast(text: &str) -> crate::error::Result<History> {
        crate::parse_history(Path::new("x.txt"), text, Format::PorcupineKv)
    }

    #[test]
    fn porcupine_files_take_the_fast_path_and_build_the_same_history() {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine/kv");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!(
                "Porcupine's kv files are missing: expected {}",
                dir.display()
            );
        };
        let mut n = 0;
        for e in entries {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            assert!(
                super::events(&text).is_some(),
                "a Porcupine file left the fast path"
            );
            assert_eq!(fast(&text).unwrap(), general(&text).unwrap());
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn other_shapes_fall_back_to_the_general_reader() {
        let ok = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                  \n{:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\r\n";
        assert!(super::events(ok).is_some());
        assert_eq!(fast(ok).unwrap(), general(ok).unwrap());
        for line in [
            // fields in another order, an escape, an integer value, a keyword process,
            // a comment, two maps on a line, a vector around them
            "{:type :invoke, :process 0, :f :get, :key \"0\", :value nil}",
            "{:process 0, :type :invoke, :f :put, :key \"0\", :value \"a\\\"b\"}",
            "{:process 0, :type :invoke, :f :put, :key \"0\", :value 5}",
            "{:process :nemesis, :type :info, :f :start, :key \"0\", :value nil}",
            "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil} ; hi",
            "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil} {:process 0, :type :ok, :f :get, :key \"0\", :value \"\"}",
            "[{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}]",
        ] {
            assert!(super::events(line).is_none(), "{line}");
            assert_eq!(fast(line).is_ok(), general(line).is_ok(), "{line}");
            if let (Ok(a), Ok(b)) = (fast(line), general(line)) {
                assert_eq!(a, b, "{line}");
            }
        }
        // A bad line still gets the general reader's message.
        let bad = "{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}\n{:process 0, :type :oops}";
        let (a, b) = (fast(bad).unwrap_err(), general(bad).unwrap_err());
        assert_eq!(a.to_string(), b.to_string());
        assert!(a.to_string().contains(":2:"), "{a}");
    }
}
