//! The live view of a run: a progress bar on a terminal, a line every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use riptide_workload::RecorderStats;

/// How often the plain (non-terminal) view prints a line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Mutex<Duration>,
    last_ops: Mutex<(Duration, u64)>,
}

impl Progress {
    pub fn new(limit: Duration, disabled: bool) -> Progress {
        let bar = (!disabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(limit.as_millis() as u64);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:24.cyan/blue}] {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last_plain: Mutex::new(Duration::ZERO),
            last_ops: Mutex::new((Duration::ZERO, 0)),
        }
    }

    pub fn update(
        &self,
        elapsed: Duration,
        stats: &RecorderStats,
        leader: Option<u64>,
        fault: Option<&str>,
    ) {
        let done = stats.ok + stats.fail + stats.info;
        let rate = {
            let mut last = self.last_ops.lock().unwrap();
            let dt = (elapsed - last.0).as_secs_f64();
            if dt < 1.0 {
                None
            } else {
                let rate = (done - last.1) as f64 / dt;
                *last = (elapsed, done);
                Some(rate)
            }
        };
        let leader = leader.map_or("none".to_string(), |id| format!("n{id}"));
        let mut msg = format!(
            "ok {} fail {} info {} | leader {leader}",
            stats.ok, stats.fail, stats.info
        );
        if let Some(fault) = fault {
            msg.push_str(&format!(" | {fault}"));
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.as_millis() as u64);
                if let Some(rate) = rate {
                    bar.set_message(format!("{rate:>5.0} ops/s | {msg}"));
                } else if bar.message().is_empty() {
                    bar.set_message(msg);
                }
            }
            None => {
                let mut last = self.last_plain.lock().unwrap();
                if elapsed >= *last + PLAIN_EVERY {
                    *last = elapsed;
                    eprintln!("riptide: {:>5.0}s | {msg}", elapsed.as_secs_f64());
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
