//! Reading a large riptide JSONL file in parallel, without holding its text.
//!
//! The file is read in blocks of whole lines ([`BLOCK`] bytes or so). One worker per core
//! parses whole blocks into compact events (strings as ranges of the block's text); the calling
//! thread pairs them into ops in file order, block after block, and drops each block once it is
//! paired. So the parse runs on every core, and memory holds a few blocks, not the file: a
//! 2 GB history no longer costs 2 GB before the first op is paired.
//!
//! The result is the history [`super::jsonl::parse`] builds from the whole text, errors
//! included: a block's events are paired in order up to its first bad line, whose error is
//! then the parse's, exactly as when the lines are read one by one. (One difference: text that
//! is not UTF-8 is reported when its block is reached, after the lines before it, where reading
//! the whole file reports it before any line.)

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::jsonl::{read_line, LineEvent};
use crate::error::{Error, Result};
use crate::history::{Builder, Event, EventType, EventValue, Process, RawValue};

/// Bytes read at a time: a block ends at the last line break in it.
pub(crate) const BLOCK: usize = 8 << 20;

/// A string of an event: a range of its block's text, or one of its block's owned strings (a
/// JSON string with escapes).
#[derive(Clone, Copy)]
enum Span {
    Text(u32, u32),
    Owned(u32),
}

enum Scalar {
    Nil,
    Int(i64),
    Str(Span),
}

enum Value {
    Scalar(Scalar),
    Pair(Scalar, Scalar),
    Other,
}

/// An event, owning nothing: what a worker hands back.
struct Compact {
    /// Line within the block, from 1.
    line: u32,
    process: Process,
    kind: EventType,
    f: Span,
    key: Option<Span>,
    value: Value,
}

/// One block, parsed: its text, its events up to the first bad line, and that line's error.
struct Parsed {
    text: String,
    owned: Vec<String>,
    events: Vec<Compact>,
    /// Lines in the block (to number the next one).
    lines: usize,
    error: Option<Error>,
}

/// Where a worker keeps what its events point to while it reads a block: the text's address
/// (a `String`'s bytes do not move when the `String` does) and the owned strings.
struct Spans<'t> {
    text: &'t str,
    owned: Vec<String>,
}

impl Spans<'_> {
    fn span(&mut self, s: Cow<'_, str>) -> Span {
        match s {
            Cow::Borrowed(b) => {
                let start = b.as_ptr() as usize - self.text.as_ptr() as usize;
                Span::Text(start as u32, b.len() as u32)
            }
            Cow::Owned(o) => {
                self.owned.push(o);
                Span::Owned(self.owned.len() as u32 - 1)
            }
        }
    }

    fn scalar(&mut self, v: RawValue<'_>) -> Scalar {
        match v {
            RawValue::Nil => Scalar::Nil,
            RawValue::Int(i) => Scalar::Int(i),
            RawValue::Str(s) => Scalar::Str(self.span(s)),
        }
    }
}

impl Parsed {
    fn str(&self, s: Span) -> &str {
        match s {
            Span::Text(start, len) => &self.text[start as usize..(start + len) as usize],
            Span::Owned(i) => &self.owned[i as usize],
        }
    }

    fn raw(&self, v: &Scalar) -> RawValue<'_> {
        match v {
            Scalar::Nil => RawValue::Nil,
            Scalar::Int(i) => RawValue::Int(*i),
            Scalar::Str(s) => RawValue::Str(Cow::Borrowed(self.str(*s))),
        }
    }

    /// The event `c` as the pairing reads it, numbered from `base` (lines before the block).
    fn event(&self, c: &Compact, base: usize) -> Event<'_> {
        Event {
            line: base + c.line as usize,
            process: c.process,
            kind: c.kind,
            f: self.str(c.f),
            key: c.key.map(|k| Cow::Borrowed(self.str(k))),
            value: match &c.value {
                Value::Scalar(v) => EventValue::Scalar(self.raw(v)),
                Value::Pair(a, b) => EventValue::Pair(self.raw(a), self.raw(b)),
                Value::Other => EventValue::Other,
            },
        }
    }
}

/// Parses one block. Strings borrowed from the text become ranges of it, so the events can
/// travel with the text they point into. Lines are numbered within the block; an error's line
/// is fixed by the caller.
fn parse_block(path: &Path, text: String) -> Parsed {
    let mut events = Vec::with_capacity(text.len() / 96);
    let mut error = None;
    let mut lines = 0;
    let mut spans = Spans {
        text: &text,
        owned: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        lines = i + 1;
        let ev: LineEvent<'_> = match read_line(path, i + 1, raw) {
            Ok(Some(ev)) => ev,
            Ok(None) => continue,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let value = match ev.value {
            EventValue::Scalar(v) => Value::Scalar(spans.scalar(v)),
            EventValue::Pair(a, b) => Value::Pair(spans.scalar(a), spans.scalar(b)),
            _ => Value::Other,
        };
        events.push(Compact {
            line: (i + 1) as u32,
            process: ev.process,
            kind: ev.kind,
            f: spans.span(ev.f),
            key: ev.key.map(|k| spans.span(k)),
            value,
        });
    }
    let owned = spans.owned;
    Parsed {
        text,
        owned,
        events,
        lines,
        error,
    }
}

/// Reads `file` (whose first bytes, `head`, are already read) in blocks of whole lines, for
/// `blocks` to send on. Stops at the end, at a read error, or once nobody listens.
fn read_blocks(
    path: &Path,
    mut file: impl Read,
    head: Vec<u8>,
    size: usize,
    blocks: &SyncSender<(usize, Result<String>)>,
) {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut carry = head;
    let mut id = 0;
    loop {
        let mut buf = std::mem::take(&mut carry);
        buf.reserve(size);
        let want = size.saturating_sub(buf.len()).max(size / 8).max(1);
        let block = match (&mut file).take(want as u64).read_to_end(&mut buf) {
            Err(e) => Err(io(e)),
            Ok(0) if buf.is_empty() => return,
            Ok(n) => {
                if n > 0 {
                    match buf.iter().rposition(|&b| b == b'\n') {
                        Some(end) => carry = buf.split_off(end + 1),
                        None => {
                            // One line longer than a block: read on.
                            carry = buf;
                            continue;
                        }
                    }
                }
                String::from_utf8(buf).map_err(|_| {
                    let kind = std::io::ErrorKind::InvalidData;
                    io(std::io::Error::new(
                        kind,
                        "stream did not contain valid UTF-8",
                    ))
                })
            }
        };
        let last = block.is_err();
        if blocks.send((id, block)).is_err() || last {
            return;
        }
        id += 1;
    }
}

/// A worker: parses blocks until there are none, or nobody wants the results.
fn work(
    path: &Path,
    blocks: &Mutex<Receiver<(usize, Result<String>)>>,
    done: &SyncSender<(usize, Result<Parsed>)>,
) {
    loop {
        let next = blocks.lock().map(|rx| rx.recv());
        let Ok(Ok((id, block))) = next else {
            return;
        };
        if done
            .send((id, block.map(|t| parse_block(path, t))))
            .is_err()
        {
            return;
        }
    }
}

/// Pairs parsed blocks in file order as they arrive. Returns at the end or the first error.
fn pair_in_order(results: Receiver<(usize, Result<Parsed>)>, builder: &mut Builder) -> Result<()> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    let mut base = 0;
    for (id, parsed) in results {
        waiting.insert(id, parsed);
        while let Some(parsed) = waiting.remove(&next) {
            let parsed = parsed?;
            for c in &parsed.events {
                builder.push(parsed.event(c, base))?;
            }
            if let Some(mut e) = parsed.error {
                if let Error::Parse { line, .. } = &mut e {
                    *line += base;
                }
                return Err(e);
            }
            base += parsed.lines;
            next += 1;
        }
    }
    Ok(())
}

/// Reads the rest of `file` (after `head`) as riptide JSONL into `builder`, on `threads`
/// workers, in blocks of about `size` bytes.
pub(crate) fn load(
    path: &Path,
    file: impl Read + Send,
    head: Vec<u8>,
    (threads, size): (usize, usize),
    builder: &mut Builder,
) -> Result<()> {
    let threads = threads.max(1);
    let (block_tx, block_rx) = sync_channel(threads);
    let (done_tx, done_rx) = sync_channel(threads);
    let block_rx = Arc::new(Mutex::new(block_rx));
    std::thread::scope(|scope| {
        scope.spawn(move || read_blocks(path, file, head, size, &block_tx));
        for _ in 0..threads {
            let (rx, tx) = (Arc::clone(&block_rx), done_tx.clone());
            scope.spawn(move || work(path, &rx, &tx));
        }
        drop(block_rx);
        drop(done_tx);
        pair_in_order(done_rx, builder)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{jsonl, Format};
    use crate::history::History;

    fn whole(text: &str) -> Result<History> {
        let mut b = Builder::new(Path::new("h.jsonl"), Format::Jsonl);
        jsonl::parse(Path::new("h.jsonl"), text, &mut b)?;
        Ok(b.finish())
    }

    fn blocks(text: &str, threads: usize, size: usize) -> Result<History> {
        let mut b = Builder::new(Path::new("h.jsonl"), Format::Jsonl);
        let (head, rest) = text.as_bytes().split_at(text.len().min(size / 2));
        load(
            Path::new("h.jsonl"),
            rest,
            head.to_vec(),
            (threads, size),
            &mut b,
        )?;
        Ok(b.finish())
    }

    fn history(lines: usize) -> String {
        let mut text = String::new();
        for i in 0..lines {
            let (p, k) = (i % 7, i % 3);
            let value = match i % 4 {
                0 => "null".to_string(),
                1 => format!("{i}"),
                2 => format!("\"s\\n{i}\""),
                _ => format!("[{i}, \"x{i}\"]"),
            };
            let f = if i % 4 == 3 { "cas" } else { "write" };
            for ty in ["invoke", "ok"] {
                text.push_str(&format!(
                    "{{\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"key\":\"k{k}\",\"value\":{value}}}\n"
                ));
            }
            if i % 5 == 0 {
                text.push_str("\r\n   \n");
            }
        }
        text
    }

    #[test]
    fn blocks_give_the_history_the_whole_text_gives() {
        let text = history(300);
        let want = whole(&text).unwrap();
        for (threads, size) in [(1, 64), (2, 100), (3, 1000), (2, 1 << 20)] {
            assert_eq!(
                blocks(&text, threads, size).unwrap(),
                want,
                "{threads} {size}"
            );
        }
        let no_newline = text.trim_end();
        assert_eq!(
            blocks(no_newline, 2, 77).unwrap(),
            whole(no_newline).unwrap()
        );
    }

    #[test]
    fn blocks_give_the_first_error_the_whole_text_gives() {
        let text = history(200);
        let lines: Vec<&str> = text.lines().collect();
        for bad_at in [0, 1, 57, 300, lines.len() - 1] {
            for bad in [
                "not json",
                r#"{"process":3,"type":"ok","f":"write","value":1}"#,
            ] {
                let mut broken = lines.clone();
                broken[bad_at] = bad;
                let broken = broken.join("\n");
                let want = whole(&broken).unwrap_err().to_string();
                for (threads, size) in [(1, 64), (2, 333)] {
                    let got = blocks(&broken, threads, size).unwrap_err().to_string();
                    assert_eq!(got, want, "line {bad_at}, {threads} {size}");
                }
            }
        }
    }
}
