//! The Raft loop: the one thread that owns the [`Executor`] (core, log store, state machine) and
//! feeds it events from the network and ticks from the clock.
//!
//! Each iteration: wait for an event or the next tick, take every event already queued (the
//! batch, at most [`MAX_BATCH_EVENTS`] more), feed them to the executor, fire the ticks that are
//! due, then let the executor carry out the core's `Ready` (see [`super::executor`] for the order
//! and the answers clients get). Requests that arrive during an fsync wait in the channel and are
//! covered by the next iteration's single fsync: group commit, with no lock ever held across an
//! fsync because this thread owns its state outright.
//!
//! A storage error ends the loop (and the process): see [`super::executor`].

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{Sender, UnboundedSender};

use super::executor::{Clients, Executor, Network};
use super::options::NodeOptions;
use crate::logging::TermCell;
use crate::protocol::{ClientRequest, ClientResponse};
use crate::raft::{Message, Raft};
use super::node_storage::NodeStorage;
use crate::kv::KvStore;
use crate::types::NodeId;

/// Most events taken per iteration, so that ticks and fsyncs are not starved by a flood.
pub const MAX_BATCH_EVENTS: usize = 4096;

/// If the thread was stopped (SIGSTOP) or starved, catch up at most this many ticks at once;
/// firing hundreds of heartbeats in a burst helps nobody.
const MAX_CATCHUP_TICKS: u32 = 5;

/// What the network hands the loop.
pub enum Event {
    Peer(Message),
    Client {
        request: ClientRequest,
        reply: UnboundedSender<ClientResponse>,
    },
}

/// Where to send a peer's messages.
pub struct PeerLink {
    pub addr: String,
    pub tx: Sender<Message>,
}

/// The outbound queues of every peer link: the real node's [`Network`].
pub struct PeerLinks {
    links: BTreeMap<NodeId, PeerLink>,
    dropped_messages: u64,
}

impl Network for PeerLinks {
    fn send(&mut self, msg: Message) {
        let Some(peer) = self.links.get(&msg.to) else {
            return;
        };
        if peer.tx.try_send(msg).is_err() {
            // The link is down or slow; Raft retries on its own (heartbeats, probes).
            self.dropped_messages += 1;
            if self.dropped_messages.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_messages,
                    "outbound peer queue full; dropping messages"
                );
            }
        }
    }
}

/// Answers go back on the channel of the connection the request came in on.
pub struct ResponseChannels;

impl Clients for ResponseChannels {
    type Reply = UnboundedSender<ClientResponse>;
    fn answer(&mut self, reply: Self::Reply, response: ClientResponse) {
        // The connection may be gone; nobody is left to tell.
        let _ = reply.send(response);
    }
}

/// The real node's executor.
pub type NodeExecutor = Executor<NodeStorage, PeerLinks, ResponseChannels>;

pub struct RaftLoop {
    executor: NodeExecutor,
    tick: Duration,
    term: TermCell,
}

impl RaftLoop {
    pub fn new(
        raft: Raft,
        store: NodeStorage,
        kv: KvStore,
        peers: BTreeMap<NodeId, PeerLink>,
        opts: &NodeOptions,
        term: TermCell,
    ) -> RaftLoop {
        let mut addrs: BTreeMap<NodeId, String> =
            peers.iter().map(|(&id, p)| (id, p.addr.clone())).collect();
        addrs.insert(opts.id, opts.listen.to_string());
        let links = PeerLinks {
            links: peers,
            dropped_messages: 0,
        };
        let mut executor = Executor::new(
            raft,
            store,
            links,
            ResponseChannels,
            addrs,
            &opts.unsafe_bugs,
        )
        .with_state(kv);
        executor.set_snapshot_policy(opts.snapshot);
        RaftLoop {
            executor,
            tick: Duration::from_millis(opts.tick_ms),
            term,
        }
    }

    /// Runs until every event sender is gone (the network shut down) or storage fails.
    pub fn run(mut self, events: Receiver<Event>) -> anyhow::Result<()> {
        let mut next_tick = Instant::now() + self.tick;
        self.process_ready()?;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match events.recv_timeout(wait) {
                Ok(event) => {
                    self.handle(event);
                    for event in events.try_iter().take(MAX_BATCH_EVENTS) {
                        self.handle(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            let mut ticks = 0;
            while now >= next_tick {
                if ticks < MAX_CATCHUP_TICKS {
                    self.executor.tick();
                    ticks += 1;
                }
                next_tick += self.tick;
            }
            self.process_ready()?;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Peer(msg) => self.executor.step(msg),
            Event::Client { request, reply } => self.executor.on_client(request, reply),
        }
    }

    fn process_ready(&mut self) -> anyhow::Result<()> {
        self.executor.process_ready()?;
        self.term.set(self.executor.raft().term());
        Ok(())
    }
}
