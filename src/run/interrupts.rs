//! Ctrl-C and SIGTERM during a run: the first ends the workload early (the run still heals,
//! reads, checks and is stored, marked `incomplete`); the second also skips the final reads.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use riptide_nemesis::Shutdown;
use tokio::signal::unix::{signal, SignalKind};

/// How many times the run was interrupted.
#[derive(Clone)]
pub struct Interrupts {
    count: Arc<AtomicU8>,
}

impl Interrupts {
    /// Listens for Ctrl-C and SIGTERM on `runtime`; each one also triggers `shutdown` (which
    /// stops the nemesis).
    pub fn listen(runtime: &tokio::runtime::Runtime, shutdown: Shutdown) -> Interrupts {
        let interrupts = Interrupts {
            count: Arc::new(AtomicU8::new(0)),
        };
        let count = interrupts.count.clone();
        runtime.spawn(async move {
            let mut term = signal(SignalKind::terminate()).ok();
            loop {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { return },
                    _ = async {
                        match term.as_mut() {
                            Some(t) => { t.recv().await; }
                            None => std::future::pending().await,
                        }
                    } => {}
                }
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                shutdown.trigger();
                let what = if n == 1 {
                    "stopping the run cleanly (Ctrl-C again to skip the final reads)"
                } else {
                    "skipping the final reads"
                };
                eprintln!("\nriptide: interrupted ({n}); {what}");
            }
        });
        interrupts
    }

    /// The workload should stop.
    pub fn stop_workload(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// The final reads should be skipped too.
    pub fn skip_final_reads(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 1
    }
}
