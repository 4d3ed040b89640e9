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

#[derive(Clone, Copy, PartialEq)]
enum F {
    Read,
    Write,
    Cas,
}

#[derive(Clone, Copy)]
struct Pending {
    f: F,
    /// write value or cas `from`.
    a: i64,
    /// cas `to`.
    b: i64,
    /// Took effect yet? With the read result (0 = nil) or whether the cas matched.
    applied: bool,
    result: i64,
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

fn main() {
    let args = parse_args();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut next_process = 0u64;
    let mut keys: Vec<Key> = (0..args.keys)
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
    let mut active: Vec<usize> = (0..args.keys).collect();
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    let mut index = 0u64;
    let mut line = |out: &mut BufWriter<_>, p: u64, ty: &str, f: F, key: usize, value: String| {
        let f = match f {
            F::Read => "read",
            F::Write => "write",
            F::Cas => "cas",
        };
        writeln!(
            out,
            r#"{{"index":{index},"time":{},"process":{p},"type":"{ty}","f":"{f}","key":"k{key}","value":{value}}}"#,
            index * 1000
        )
        .expect("write");
        index += 1;
    };
    let show = |v: i64| {
        if v == 0 {
            "null".to_string()
        } else {
            v.to_string()
        }
    };
    while !active.is_empty() {
        let slot = rng.gen_range(0..active.len());
        let k = active[slot];
        let key = &mut keys[k];
        let c = rng.gen_range(0..key.clients.len());
        if !key.lingering.is_empty() && rng.gen_bool(0.02) {
            // A timed-out op takes effect late.
            let i = rng.gen_range(0..key.lingering.len());
            let op = key.lingering.swap_remove(i);
            match op.f {
                F::Write => key.value = op.a,
                F::Cas if key.value == op.a => key.value = op.b,
                _ => {}
            }
            continue;
        }
        let client = &mut key.clients[c];
        match client.op {
            None if key.invoked < key.quota => {
                let roll = rng.gen_range(0..10);
                let op = if roll < 5 {
                    Pending {
                        f: F::Read,
                        a: 0,
                        b: 0,
                        applied: false,
                        result: 0,
                    }
                } else if roll < 8 {
                    key.next_value += 1;
                    Pending {
                        f: F::Write,
                        a: key.next_value - 1,
                        b: 0,
                        applied: false,
                        result: 0,
                    }
                } else {
                    let from = if rng.gen_bool(0.5) {
                        key.value
                    } else {
                        key.next_value - 1
                    };
                    key.next_value += 1;
                    Pending {
                        f: F::Cas,
                        a: from,
                        b: key.next_value - 1,
                        applied: false,
                        result: 0,
                    }
                };
                let value = match op.f {
                    F::Read => "null".to_string(),
                    F::Write => show(op.a),
                    F::Cas => format!("[{},{}]", show(op.a), show(op.b)),
                };
                line(&mut out, client.process, "invoke", op.f, k, value);
                client.op = Some(op);
                key.invoked += 1;
            }
            None => {
                if key.clients.iter().all(|c| c.op.is_none()) {
                    active.swap_remove(slot);
                }
            }
            Some(mut op) if !op.applied => {
                if rng.gen_bool(args.info / 2.0) {
                    // Timed out before taking effect: maybe later, maybe never.
                    line(&mut out, client.process, "info", op.f, k, "null".into());
                    if rng.gen_bool(0.5) {
                        key.lingering.push(op);
                    }
                    next_process += 1;
                    client.process = next_process - 1;
                    client.op = None;
                    continue;
                }
                match op.f {
                    F::Read => op.result = key.value,
                    F::Write => key.value = op.a,
                    F::Cas => {
                        op.result = i64::from(key.value == op.a);
                        if op.result == 1 {
                            key.value = op.b;
                        }
                    }
                }
                op.applied = true;
                client.op = Some(op);
            }
            Some(op) => {
                if rng.gen_bool(args.info / 2.0) {
                    // Took effect, but the client never heard.
                    line(&mut out, client.process, "info", op.f, k, "null".into());
                    next_process += 1;
                    client.process = next_process - 1;
                    client.op = None;
                    continue;
                }
                let (ty, value) = match op.f {
                    F::Read => ("ok", show(op.result)),
                    F::Write => ("ok", show(op.a)),
                    F::Cas => (
                        if op.result == 1 { "ok" } else { "fail" },
                        format!("[{},{}]", show(op.a), show(op.b)),
                    ),
                };
                line(&mut out, client.process, ty, op.f, k, value);
                client.op = None;
            }
        }
    }
    out.flush().expect("flush");
}
