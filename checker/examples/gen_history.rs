//! Generates a large, linearizable register history in riptide's JSONL format, for measuring
//! the checker at scale.
//!
//! ```text
//! cargo run --release -p riptide-checker --example gen_history -- \
//!     --ops 1000000 --keys 1000 --clients 10 --info 0.01 --seed 1 > /tmp/h1m.jsonl
//! riptide check /tmp/h1m.jsonl
//! ```
//!
//! Each key has its own register and `--clients` client processes. The generator runs a random
//! sequential execution: at each step it picks a key and then either invokes an op for an idle
//! client, makes a pending op take effect (reads see the current value, cas compares), or
//! completes an op that took effect. A fraction `--info` of completions time out (`info`): half
//! of those took effect before the timeout, the rest take effect later or never, and the client
//! continues as a new process. Writes use values unique per key; a cas that finds another value
//! fails. So the history is linearizable by construction, and the checker must say so.

use std::io::{BufWriter, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_history::OpKind;

struct Args {
    ops: usize,
    keys: usize,
    clients: usize,
    info: f64,
    seed: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        ops: 1_000_000,
        keys: 1_000,
        clients: 10,
        info: 0.01,
        seed: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            panic!("usage: gen_history [--ops N] [--keys N] [--clients N] [--info P] [--seed N]");
        };
        match flag.as_str() {
            "--ops" => a.ops = value.parse().expect("--ops N"),
            "--keys" => a.keys = value.parse().expect("--keys N"),
            "--clients" => a.clients = value.parse().expect("--clients N"),
            "--info" => a.info = value.parse().expect("--info P"),
            "--seed" => a.seed = value.parse().expect("--seed N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[derive(Clone, Copy)]
struct Pending {
    f: OpKind,
    /// write value or cas `from`.
    a: i64,
    /// cas `to`.
    b: i64,
    /// Took effect yet? With the read result (0 = nil) or whether the cas matched.
    applied: bool,
    result: i64,
}

impl Pending {
    fn new(f: OpKind, a: i64, b: i64) -> Pending {
        Pending {
            f,
            a,
            b,
            applied: false,
            result: 0,
        }
    }
}

struct Client {
    process: u64,
    op: Option<Pending>,
}

struct Key {
    value: i64, // 0 = nil
    next_value: i64,
    clients: Vec<Client>,
    /// Timed-out ops that may still take effect.
    lingering: Vec<Pending>,
    invoked: usize,
    quota: usize,
}

/// The JSON of a register value: 0 is nil.
fn show(v: i64) -> String {
    if v == 0 {
        "null".to_string()
    } else {
        v.to_string()
    }
}

/// Where the history goes, numbering its lines.
struct Out<W: Write> {
    w: BufWriter<W>,
    index: u64,
}

impl<W: Write> Out<W> {
    fn line(&mut self, p: u64, ty: &str, f: OpKind, key: usize, value: &str) {
        let index = self.index;
        writeln!(
            self.w,
            r#"{{"index":{index},"time":{},"process":{p},"type":"{ty}","f":"{}","key":"k{key}","value":{value}}}"#,
            index * 1000,
            f.name()
        )
        .expect("write");
        self.index += 1;
    }
}

/// The random sequential execution: every key's register, clients and lingering ops.
struct Execution {
    rng: ChaCha8Rng,
    info: f64,
    keys: Vec<Key>,
    /// Keys with ops still to invoke or complete.
    active: Vec<usize>,
    next_process: u64,
}

impl Execution {
    fn new(args: &Args) -> Execution {
        let mut next_process = 0u64;
        let keys = (0..args.keys)
            .map(|k| Key {
                value: 0,
                next_value: 1,
                clients: (0..args.clients)
                    .map(|_| {
                        next_process += 1;
                        Client {
                            process: next_process - 1,
                            op: None,
                        }
                    })
                    .collect(),
                lingering: Vec::new(),
                invoked: 0,
                quota: args.ops / args.keys + usize::from(k < args.ops % args.keys),
            })
            .collect();
        Execution {
            rng: ChaCha8Rng::seed_from_u64(args.seed),
            info: args.info,
            keys,
            active: (0..args.keys).collect(),
            next_process,
        }
    }

    /// One step on a random key: a lingering op takes effect, or a random client moves on.
    fn step<W: Write>(&mut self, out: &mut Out<W>) {
        let slot = self.rng.gen_range(0..self.active.len());
        let k = self.active[slot];
        let c = self.rng.gen_range(0..self.keys[k].clients.len());
        if !self.keys[k].lingering.is_empty() && self.rng.gen_bool(0.02) {
            self.late_effect(k);
            return;
        }
        let key = &self.keys[k];
        match key.clients[c].op {
            None if key.invoked < key.quota => self.invoke(k, c, out),
            None => {
                if key.clients.iter().all(|c| c.op.is_none()) {
                    self.active.swap_remove(slot);
                }
            }
            Some(op) if !op.applied => self.take_effect(k, c, op, out),
            Some(op) => self.complete(k, c, op, out),
        }
    }

    /// A timed-out op takes effect late.
    fn late_effect(&mut self, k: usize) {
        let key = &mut self.keys[k];
        let i = self.rng.gen_range(0..key.lingering.len());
        let op = key.lingering.swap_remove(i);
        match op.f {
            OpKind::Write => key.value = op.a,
            OpKind::Cas if key.value == op.a => key.value = op.b,
            _ => {}
        }
    }

    /// An idle client invokes a read (half the time), a write of a new value, or a cas from
    /// the current or the last value to a new one.
    fn invoke<W: Write>(&mut self, k: usize, c: usize, out: &mut Out<W>) {
        let key = &mut self.keys[k];
        let roll = self.rng.gen_range(0..10);
        let op = if roll < 5 {
            Pending::new(OpKind::Read, 0, 0)
        } else if roll < 8 {
            key.next_value += 1;
            Pending::new(OpKind::Write, key.next_value - 1, 0)
        } else {
            let from = if self.rng.gen_bool(0.5) {
                key.value
            } else {
                key.next_value - 1
            };
            key.next_value += 1;
            Pending::new(OpKind::Cas, from, key.next_value - 1)
        };
        let value = match op.f {
            OpKind::Read => "null".to_string(),
            OpKind::Cas => format!("[{},{}]", show(op.a), show(op.b)),
            _ => show(op.a),
        };
        let client = &mut key.clients[c];
        out.line(client.process, "invoke", op.f, k, &value);
        client.op = Some(op);
        key.invoked += 1;
    }

    /// A pending op takes effect, or times out first (and may take effect later, or never).
    fn take_effect<W: Write>(&mut self, k: usize, c: usize, mut op: Pending, out: &mut Out<W>) {
        if self.rng.gen_bool(self.info / 2.0) {
            if self.rng.gen_bool(0.5) {
                self.keys[k].lingering.push(op);
            }
            self.time_out(k, c, op, out);
            return;
        }
        let key = &mut self.keys[k];
        match op.f {
            OpKind::Read => op.result = key.value,
            OpKind::Cas => {
                op.result = i64::from(key.value == op.a);
                if op.result == 1 {
                    key.value = op.b;
                }
            }
            _ => key.value = op.a,
        }
        op.applied = true;
        key.clients[c].op = Some(op);
    }

    /// An op that took effect completes: ok, or fail for a cas that did not match; or the
    /// client never hears.
    fn complete<W: Write>(&mut self, k: usize, c: usize, op: Pending, out: &mut Out<W>) {
        if self.rng.gen_bool(self.info / 2.0) {
            self.time_out(k, c, op, out);
            return;
        }
        let (ty, value) = match op.f {
            OpKind::Read => ("ok", show(op.result)),
            OpKind::Cas => (
                if op.result == 1 { "ok" } else { "fail" },
                format!("[{},{}]", show(op.a), show(op.b)),
            ),
            _ => ("ok", show(op.a)),
        };
        let client = &mut self.keys[k].clients[c];
        out.line(client.process, ty, op.f, k, &value);
        client.op = None;
    }

    /// The client's op ends `info`; the client continues as a new process.
    fn time_out<W: Write>(&mut self, k: usize, c: usize, op: Pending, out: &mut Out<W>) {
        let client = &mut self.keys[k].clients[c];
        out.line(client.process, "info", op.f, k, "null");
        self.next_process += 1;
        client.process = self.next_process - 1;
        client.op = None;
    }
}

fn main() {
    let args = parse_args();
    let mut execution = Execution::new(&args);
    let stdout = std::io::stdout();
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, stdout.lock()),
        index: 0,
    };
    while !execution.active.is_empty() {
        execution.step(&mut out);
    }
    out.w.flush().expect("flush");
}
