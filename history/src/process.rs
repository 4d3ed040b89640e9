//! [`Process`]: who ran an event, and how riptide numbers its client processes.
//!
//! The numbering follows Jepsen, and every part of the bench relies on it:
//!
//! - **Workers.** Worker `w` (of `concurrency`) starts as process `w`.
//! - **After an `info`** the op may still be in flight, so the process can never invoke again
//!   (a process never has two ops open, and an op never completes twice). The worker continues as
//!   process [`after_info`]`(p, concurrency)` = `p + concurrency`: worker `w` runs as processes
//!   `w + k * concurrency`, so [`worker_of`]`(p, concurrency)` = `p % concurrency` is its worker,
//!   the lane the reports draw it on.
//! - **Final reads.** After the faults stop, every key is read once more by readers under
//!   processes from [`FINAL_READ_BASE`] on ([`final_reader`]`(k)`), far above any worker's, so
//!   [`is_final_read`] tells them apart. (Reads never end in `info`: a read that gets no answer
//!   is a `fail`, so a reader keeps its process.)
//! - **The nemesis** is not a client: JSON `"nemesis"` instead of a number.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The first process of the final reads: a billion, more than any run's workers can reach
/// (a worker takes a new process only after an `info`, at most one per op).
pub const FINAL_READ_BASE: u64 = 1_000_000_000;

/// Who ran an event. JSON: an integer, or the string `"nemesis"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client process.
    Client(u64),
    /// The nemesis, or (in Jepsen's formats) any other process that is not a client.
    Nemesis,
}

impl Process {
    /// The client process number; `None` for the nemesis.
    pub fn client(self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The process a worker continues as after an `info` on `process`.
pub fn after_info(process: u64, concurrency: u64) -> u64 {
    process + concurrency
}

/// The worker (and report lane) a process belongs to.
pub fn worker_of(process: u64, concurrency: u64) -> u64 {
    process % concurrency
}

/// The process of final reader `k`.
pub fn final_reader(k: u64) -> u64 {
    FINAL_READ_BASE + k
}

/// Whether `process` is one of the final reads.
pub fn is_final_read(process: u64) -> bool {
    process >= FINAL_READ_BASE
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a process number or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom("a process number must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" {
                    Ok(Process::Nemesis)
                } else {
                    Err(E::custom(format!(
                        "process {v:?} is neither a number nor \"nemesis\""
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_a_number_or_the_nemesis_in_json() {
        for (p, json) in [(Process::Client(3), "3"), (Process::Nemesis, "\"nemesis\"")] {
            assert_eq!(serde_json::to_string(&p).unwrap(), json);
            assert_eq!(serde_json::from_str::<Process>(json).unwrap(), p);
        }
        let bad = serde_json::from_str::<Process>("\"worker-1\"").unwrap_err();
        assert!(bad.to_string().contains("neither a number nor"), "{bad}");
        assert!(serde_json::from_str::<Process>("-1").is_err());
    }

    #[test]
    fn a_worker_keeps_its_lane_across_infos_and_final_reads_stand_apart() {
        let concurrency = 5;
        let mut p = 3;
        for _ in 0..4 {
            p = after_info(p, concurrency);
            assert_eq!(worker_of(p, concurrency), 3);
            assert!(!is_final_read(p));
        }
        assert_eq!(p, 23);
        assert!(is_final_read(final_reader(0)));
        assert!(!is_final_read(FINAL_READ_BASE - 1));
    }
}
