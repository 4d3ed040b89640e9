//! Slow links: every packet of a link held back for a fixed time, in userspace (NFQUEUE).
//!
//! # Why not `tc netem`
//!
//! The usual way to slow a Linux link is the `netem` queueing discipline. Many kernels (among
//! them this project's CI machines) are built without it (`CONFIG_NET_SCH_NETEM` unset), and
//! netem on a shared loopback needs classful qdiscs and filters to pick one link. iptables'
//! `NFQUEUE` target is in every distribution kernel: it hands each matching packet to a userspace
//! program, and the packet goes on only when the program gives its verdict. Giving the verdict
//! `D` ms later is a delay of `D` ms on that link.
//!
//! # How a delay is applied
//!
//! - A rule of kind [`crate::firewall::RuleKind::Delay`] is `-s A -d B -j NFQUEUE --queue-num D
//!   --queue-bypass`, in a chain of its own hooked into OUTPUT: the packet is held as it leaves,
//!   and meets the run's drop chain in INPUT only when it arrives, so a partition drops what it
//!   cuts, even a packet that was already held when the cut came. The queue number *is* the delay in ms: every packet in
//!   queue `D` waits `D` ms, and a queue is first in, first out, so a link's packets leave in the
//!   order they came (TCP sees a slow link, not a reordering one; packets of *different* links do
//!   overtake each other, as on a real network).
//! - [`Delayer`] owns one thread inside the run's namespace with one netlink socket bound to every
//!   queue in use. It asks the kernel for metadata only (no packet bytes are copied) and gives each
//!   packet its `Accept` verdict once its time is up.
//! - `--queue-bypass`: a packet whose queue has no listener is accepted at once, and every queue is
//!   *fail-open* (a full queue accepts instead of dropping). A delay never loses a packet, even if
//!   the delayer thread dies.
//! - Healing flushes the rules; packets already held still leave at their time. Dropping the
//!   [`Delayer`] lets every held packet go at once.
//!
//! Delays up to [`MAX_DELAY_MS`]. The precision is about a millisecond: the thread polls the
//! (non-blocking) socket and sleeps at most 1 ms between polls while packets are held, 5 ms when
//! none are.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The longest delay a link may get, in ms: queue numbers are delays, and five seconds is
/// already far beyond any timeout of a node or client.
pub const MAX_DELAY_MS: u16 = 5_000;

/// How many packets the kernel holds per queue before fail-open lets the next ones through
/// undelayed.
const QUEUE_MAX_LEN: u32 = 1 << 16;

enum Command {
    /// Bind these queues (delays in ms), then answer.
    Bind(Vec<u16>, mpsc::Sender<std::io::Result<()>>),
}

/// The thread that holds delayed packets; see the module docs.
pub struct Delayer {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    bound: Mutex<BTreeSet<u16>>,
}

impl std::fmt::Debug for Delayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delayer")
            .field("bound", &*self.bound.lock().expect("poisoned"))
            .finish()
    }
}

impl Delayer {
    /// Opens the netlink socket on a new thread. The thread inherits the caller's network
    /// namespace, so call it from inside the sandbox.
    pub fn start() -> Result<Delayer> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("riptide-delay".into())
            .spawn(move || match nfq::Queue::open() {
                Ok(queue) => {
                    let _ = ready_tx.send(Ok(()));
                    hold_and_release(queue, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| Error::io("starting the delay thread", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Delayer {
                commands: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                bound: Mutex::new(BTreeSet::new()),
            }),
            Ok(Err(e)) => Err(nfqueue_error("opening a netfilter queue socket", e)),
            Err(_) => Err(Error::DelayUnavailable {
                what: "the delay thread exited at start".into(),
            }),
        }
    }

    /// Makes sure every delay in `delays_ms` has its queue bound, before a rule sends packets
    /// there. Fails with the kernel's reason (no `nfnetlink_queue`, no `CAP_NET_ADMIN`).
    pub fn ensure(&self, delays_ms: &[u16]) -> Result<()> {
        let missing: Vec<u16> = {
            let bound = self.bound.lock().expect("poisoned");
            let wanted: BTreeSet<u16> = delays_ms.iter().copied().collect();
            wanted.difference(&bound).copied().collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        let sent = self
            .commands
            .lock()
            .expect("poisoned")
            .as_ref()
            .map(|c| c.send(Command::Bind(missing.clone(), tx)).is_ok());
        let gone = || Error::DelayUnavailable {
            what: "the delay thread is gone".into(),
        };
        if sent != Some(true) {
            return Err(gone());
        }
        match rx.recv() {
            Ok(Ok(())) => {
                self.bound.lock().expect("poisoned").extend(missing);
                Ok(())
            }
            Ok(Err(e)) => Err(nfqueue_error("binding a netfilter queue", e)),
            Err(_) => Err(gone()),
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        // Closing the channel tells the thread to let every held packet go and exit.
        self.commands.lock().expect("poisoned").take();
        if let Some(thread) = self.thread.lock().expect("poisoned").take() {
            let _ = thread.join();
        }
    }
}

fn nfqueue_error(what: &str, e: std::io::Error) -> Error {
    Error::DelayUnavailable {
        what: format!(
            "{what}: {e} (the delay fault needs the kernel's NFQUEUE support, nfnetlink_queue, \
             and CAP_NET_ADMIN in the run's namespace)"
        ),
    }
}

/// The packets held, per queue (= delay in ms), each with the time it may leave.
#[derive(Default)]
struct Held {
    queues: BTreeMap<u16, VecDeque<(Instant, nfq::Message)>>,
}

impl Held {
    fn push(&mut self, msg: nfq::Message, now: Instant) {
        let delay = msg.get_queue_num();
        let due = now + Duration::from_millis(u64::from(delay));
        self.queues.entry(delay).or_default().push_back((due, msg));
    }

    /// The earliest time a held packet may leave.
    fn next_due(&self) -> Option<Instant> {
        self.queues
            .values()
            .filter_map(|q| q.front().map(|(due, _)| *due))
            .min()
    }

    /// Takes every packet due by `now` (all of them with `None`).
    fn take_due(&mut self, now: Option<Instant>) -> Vec<nfq::Message> {
        let mut out = Vec::new();
        for queue in self.queues.values_mut() {
            while queue
                .front()
                .is_some_and(|(due, _)| now.is_none_or(|now| *due <= now))
            {
                out.extend(queue.pop_front().map(|(_, msg)| msg));
            }
        }
        out
    }
}

/// The delay thread's loop: receive, hold, release; bind queues when asked; on a closed channel
/// release everything and return.
fn hold_and_release(mut queue: nfq::Queue, commands: mpsc::Receiver<Command>) {
    queue.set_nonblocking(true);
    let mut held = Held::default();
    loop {
        match commands.try_recv() {
            Ok(Command::Bind(delays, answer)) => {
                receive(&mut queue, &mut held);
                let _ = answer.send(bind(&mut queue, &delays));
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                receive(&mut queue, &mut held);
                release(&mut queue, held.take_due(None));
                return;
            }
        }
        receive(&mut queue, &mut held);
        release(&mut queue, held.take_due(Some(Instant::now())));
        let nap = match held.next_due() {
            Some(due) => due
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(1)),
            None => Duration::from_millis(5),
        };
        std::thread::sleep(nap);
    }
}

/// Takes every packet the kernel has queued for us, without waiting.
fn receive(queue: &mut nfq::Queue, held: &mut Held) {
    loop {
        match queue.recv() {
            Ok(msg) => held.push(msg, Instant::now()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!("receiving from the netfilter queue: {e}");
                return;
            }
        }
    }
}

fn release(queue: &mut nfq::Queue, packets: Vec<nfq::Message>) {
    for mut msg in packets {
        msg.set_verdict(nfq::Verdict::Accept);
        if let Err(e) = queue.verdict(msg) {
            tracing::warn!("releasing a delayed packet: {e}");
        }
    }
}

/// Binds each queue: metadata only, fail-open, a long kernel queue. Blocking while it waits for
/// the kernel's acknowledgements.
fn bind(queue: &mut nfq::Queue, delays: &[u16]) -> std::io::Result<()> {
    queue.set_nonblocking(false);
    let result = delays.iter().try_for_each(|&d| {
        queue.bind(d)?;
        queue.set_copy_range(d, 0)?;
        queue.set_fail_open(d, true)?;
        queue.set_queue_max_len(d, QUEUE_MAX_LEN)
    });
    queue.set_nonblocking(true);
    result
}
