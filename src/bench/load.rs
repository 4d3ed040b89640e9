//! The closed-loop load generator: C clients, each with its own connection, each sending its
//! next request only when the last one was answered.
//!
//! Closed loop means the offered load is whatever the system sustains: throughput is what the
//! clients got through, latency is what each of them waited. (An open loop, requests at a fixed
//! rate, would instead measure queueing once the rate passes the capacity.) All clients run as
//! futures on the one thread of a current-thread tokio runtime, so that the generator costs as
//! little as it can and its CPU time is easy to read (see [`super::cpu`]).
//!
//! Each client picks its keys from its own seeded RNG (`seed + client index`), uniformly over
//! `--keys` 8-byte keys; values are `value_size` bytes whose first 16 carry the client and a
//! counter (so every cas writes a new value). An op is counted when it *completes* inside the
//! measured window, after the warm-up; its latency goes into an HDR histogram (microseconds,
//! 3 significant digits). An error (an unknown outcome, a refusal, a timeout) is counted, not
//! timed; a cas that found another value is a definite answer, counted as an op and as a
//! mismatch.

use std::cell::RefCell;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::cpu;
use super::plan::{key, Op};

/// How an op ended, whatever the target.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// A cas found another value: this one.
    Mismatch(String),
    Error(String),
}

/// One client's connection to the target.
pub enum Session {
    Riptide(riptide_workload::Client),
    /// Boxed: etcd's client is several times the size of riptide's.
    Etcd(Box<etcd_client::KvClient>),
}

impl Session {
    pub async fn put(&mut self, key: &str, value: &str) -> Outcome {
        match self {
            Session::Riptide(client) => super::riptide::put(client, key, value).await,
            Session::Etcd(client) => super::etcd::put(client, key, value).await,
        }
    }

    pub async fn get(&mut self, key: &str) -> Outcome {
        match self {
            Session::Riptide(client) => super::riptide::get(client, key).await,
            Session::Etcd(client) => super::etcd::get(client, key).await,
        }
    }

    pub async fn cas(&mut self, key: &str, expected: &str, new: &str) -> Outcome {
        match self {
            Session::Riptide(client) => super::riptide::cas(client, key, expected, new).await,
            Session::Etcd(client) => super::etcd::cas(client, key, expected, new).await,
        }
    }
}

/// One point's load.
#[derive(Clone, Debug)]
pub struct Load {
    pub op: Op,
    pub value_size: usize,
    pub keys: u64,
    pub read_ratio: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
}

/// A process whose CPU time is read around the measured window.
#[derive(Clone, Debug)]
pub struct Process {
    pub leader: bool,
    pub pid: Option<u32>,
}

/// What one repetition of a point measured.
pub struct Measurement {
    pub ops: u64,
    pub errors: u64,
    pub mismatches: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    pub latency_us: Histogram<u64>,
    /// CPU seconds in the window, in the order of the processes given.
    pub process_cpu: Vec<Option<f64>>,
    /// Resident memory (MiB) at the window's end, in the order of the processes given.
    pub process_rss_mib: Vec<Option<f64>>,
    pub generator_cpu: f64,
}

impl Measurement {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    /// A latency quantile in milliseconds (0 when nothing completed).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The value each key holds as far as the clients know: what cas expects.
pub type Known = RefCell<Vec<String>>;

/// A histogram for latencies from 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// `value_size` bytes, the first up to 16 saying who wrote it and when.
fn value(client: usize, counter: u64, value_size: usize) -> String {
    let tag = format!("{client:04x}{counter:012x}");
    let mut value = String::with_capacity(value_size);
    value.push_str(&tag[..tag.len().min(value_size)]);
    while value.len() < value_size {
        value.push('v');
    }
    value
}

/// Puts every key once, `sessions` at a time, so that gets find values and cas finds what it
/// expects. Returns the values written, or the first error.
pub async fn preload(
    sessions: &mut [Session],
    keys: u64,
    value_size: usize,
) -> Result<Known, String> {
    let known: Known = RefCell::new(vec![String::new(); keys as usize]);
    let n = sessions.len() as u64;
    let workers = sessions.iter_mut().enumerate().map(|(c, session)| {
        let known = &known;
        async move {
            let mut k = c as u64;
            while k < keys {
                let v = value(c, k, value_size);
                match session.put(&key(k), &v).await {
                    Outcome::Done => known.borrow_mut()[k as usize] = v,
                    other => return Err(format!("preloading {}: {other:?}", key(k))),
                }
                k += n;
            }
            Ok(())
        }
    });
    for result in futures::future::join_all(workers).await {
        result?;
    }
    Ok(known)
}

/// What one client counted.
struct Tally {
    ops: u64,
    errors: u64,
    mismatches: u64,
    first_error: Option<String>,
    latency_us: Histogram<u64>,
}

/// Runs every session in a closed loop for the warm-up and the window; reads the processes'
/// CPU time at the window's ends.
pub async fn measure(
    sessions: &mut [Session],
    load: &Load,
    known: &Known,
    processes: &[Process],
) -> Measurement {
    let warm = Instant::now() + load.warmup;
    let end = warm + load.duration;
    let workers = sessions
        .iter_mut()
        .enumerate()
        .map(|(c, session)| client_loop(c, session, load, known, (warm, end)));
    let sampler = async {
        tokio::time::sleep_until(warm).await;
        let before = read_cpu(processes);
        tokio::time::sleep_until(end).await;
        let after = read_cpu(processes);
        let rss: Vec<Option<f64>> = processes
            .iter()
            .map(|p| p.pid.and_then(cpu::process_rss_mib))
            .collect();
        (before, after, rss)
    };
    let (tallies, ((procs_before, own_before), (procs_after, own_after), process_rss_mib)) =
        tokio::join!(futures::future::join_all(workers), sampler);
    let mut total = Tally {
        ops: 0,
        errors: 0,
        mismatches: 0,
        first_error: None,
        latency_us: histogram(),
    };
    for tally in tallies {
        total.ops += tally.ops;
        total.errors += tally.errors;
        total.mismatches += tally.mismatches;
        total.first_error = total.first_error.or(tally.first_error);
        total
            .latency_us
            .add(&tally.latency_us)
            .expect("same bounds");
    }
    let process_cpu = procs_before
        .iter()
        .zip(&procs_after)
        .map(|(b, a)| Some(a.as_ref()? - b.as_ref()?))
        .collect();
    Measurement {
        ops: total.ops,
        errors: total.errors,
        mismatches: total.mismatches,
        first_error: total.first_error,
        window: load.duration,
        latency_us: total.latency_us,
        process_cpu,
        process_rss_mib,
        generator_cpu: own_after - own_before,
    }
}

fn read_cpu(processes: &[Process]) -> (Vec<Option<f64>>, f64) {
    let nodes = processes
        .iter()
        .map(|p| p.pid.and_then(cpu::process_seconds))
        .collect();
    (nodes, cpu::own_seconds())
}

/// One client: ops back to back until `end`, counting those that complete in `window`.
async fn client_loop(
    c: usize,
    session: &mut Session,
    load: &Load,
    known: &Known,
    (warm, end): (Instant, Instant),
) -> Tally {
    let mut rng = StdRng::seed_from_u64(load.seed.wrapping_add(c as u64));
    let mut tally = Tally {
        ops: 0,
        errors: 0,
        mismatches: 0,
        first_error: None,
        latency_us: histogram(),
    };
    let mut counter = 0u64;
    loop {
        let started = Instant::now();
        if started >= end {
            return tally;
        }
        let k = rng.gen_range(0..load.keys);
        let read = match load.op {
            Op::Get => true,
            Op::Mixed => rng.gen_bool(load.read_ratio),
            Op::Put | Op::Cas => false,
        };
        counter += 1;
        let outcome = one_op(
            session,
            load,
            known,
            k,
            read,
            value(c, counter, load.value_size),
        );
        let outcome = outcome.await;
        let done = Instant::now();
        if done < warm || done > end {
            continue;
        }
        match outcome {
            Outcome::Done => {}
            Outcome::Mismatch(_) => tally.mismatches += 1,
            Outcome::Error(why) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(why);
                continue;
            }
        }
        tally.ops += 1;
        let micros = (done - started).as_micros() as u64;
        tally.latency_us.saturating_record(micros.max(1));
    }
}

async fn one_op(
    session: &mut Session,
    load: &Load,
    known: &Known,
    k: u64,
    read: bool,
    new: String,
) -> Outcome {
    let name = key(k);
    if read {
        return session.get(&name).await;
    }
    if load.op != Op::Cas {
        let outcome = session.put(&name, &new).await;
        if let Outcome::Done = outcome {
            known.borrow_mut()[k as usize] = new;
        }
        return outcome;
    }
    let expected = known.borrow()[k as usize].clone();
    let outcome = session.cas(&name, &expected, &new).await;
    match &outcome {
        Outcome::Done => known.borrow_mut()[k as usize] = new,
        Outcome::Mismatch(actual) => known.borrow_mut()[k as usize] = actual.clone(),
        Outcome::Error(_) => {}
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_size_and_differ_by_writer_and_counter() {
        assert_eq!(value(1, 2, 100).len(), 100);
        assert_eq!(value(1, 2, 4).len(), 4);
        assert_ne!(value(1, 2, 100), value(1, 3, 100));
        assert_ne!(value(1, 2, 100), value(2, 2, 100));
    }

    #[test]
    fn quantiles_come_out_in_milliseconds() {
        let mut latency_us = histogram();
        for us in 1..=1000 {
            latency_us.record(us).unwrap();
        }
        let m = Measurement {
            ops: 1000,
            errors: 0,
            mismatches: 0,
            first_error: None,
            window: Duration::from_secs(2),
            latency_us,
            process_cpu: vec![],
            process_rss_mib: vec![],
            generator_cpu: 0.0,
        };
        assert_eq!(m.ops_per_sec(), 500.0);
        assert!((m.quantile_ms(0.5) - 0.5).abs() < 0.01);
        assert!((m.quantile_ms(0.99) - 0.99).abs() < 0.01);
    }
}
