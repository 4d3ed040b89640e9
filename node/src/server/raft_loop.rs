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
//! # Bounded on every side
//!
//! Nothing the network hands this thread waits in an unbounded queue:
//! - the events come through a channel of [`EVENT_QUEUE`] (see [`event_queue`]); the network
//!   never blocks on it but refuses what does not fit (an [`EventSender`] method returns
//!   [`Refused::Full`]), and client requests may take only [`CLIENT_EVENTS_QUEUED`] of it, so a
//!   client flood cannot crowd out the peers' messages that keep the cluster alive;
//! - an answer goes into a slot its connection reserved before it forwarded the request (a
//!   [`ClientReply`]), so answering never blocks and never fails, however slow the client;
//! - messages to peers go through bounded queues and are dropped, counted, when full
//!   ([`PeerLinks`]).
//!
//! A storage error ends the loop (and the process): see [`super::executor`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{OwnedPermit, Sender};
use tokio::sync::OwnedSemaphorePermit;

use super::executor::{Clients, Executor, Network};
use super::node_storage::NodeStorage;
use super::options::NodeOptions;
use super::transport::LinkOpener;
use crate::kv::KvStore;
use crate::logging::TermCell;
use crate::protocol::{ClientOp, ClientRequest, ClientResponse};
use crate::raft::{Body, Message, Raft};
use crate::types::{NodeId, Payload};

/// Most events taken per iteration, so that ticks and fsyncs are not starved by a flood.
pub const MAX_BATCH_EVENTS: usize = 4096;

/// Events queued from the network to this thread at most: a few batches. A burst that arrives
/// during one fsync still fills the next batch (group commit needs the queue to hold at least
/// one), while an admitted event waits behind at most four batches, so its latency stays a few
/// fsyncs and the queue's memory stays a few thousand small messages. What does not fit is
/// refused at once: a client is told `Unavailable`, a peer message is dropped.
pub const EVENT_QUEUE: usize = 4 * MAX_BATCH_EVENTS;

/// Client requests queued at most; the rest of [`EVENT_QUEUE`] is left to peers' messages and
/// status queries. Otherwise a client flood would drop heartbeats and votes and start needless
/// elections on exactly the node that is already the busiest, and the runner's status probe
/// would see a busy node as a dead one. (A status query is one small event answered at once.)
pub const CLIENT_EVENTS_QUEUED: usize = 3 * MAX_BATCH_EVENTS;

/// If the thread was stopped (SIGSTOP) or starved, catch up at most this many ticks at once;
/// firing hundreds of heartbeats in a burst helps nobody.
const MAX_CATCHUP_TICKS: u32 = 5;

/// What the network hands the loop.
pub enum Event {
    Peer(Message),
    Client {
        request: ClientRequest,
        reply: ClientReply,
        /// Its place among the [`CLIENT_EVENTS_QUEUED`] (none for a status query); given back
        /// when the loop takes it.
        queued: Option<QueuedClient>,
    },
}

/// Creates the channel from the network to the loop: at most [`EVENT_QUEUE`] events.
pub fn event_queue() -> (EventSender, Receiver<Event>) {
    let (tx, rx) = sync_channel(EVENT_QUEUE);
    let clients_queued = Arc::new(AtomicUsize::new(0));
    (EventSender { tx, clients_queued }, rx)
}

/// Why an event was not queued.
#[derive(Debug)]
pub enum Refused<T> {
    /// The queue is full: nothing was queued, and `T` is handed back.
    Full(T),
    /// The loop is gone: the node is shutting down.
    Closed,
}

/// The network's end of the event channel. It never blocks: what does not fit is refused.
#[derive(Clone)]
pub struct EventSender {
    tx: SyncSender<Event>,
    clients_queued: Arc<AtomicUsize>,
}

impl EventSender {
    /// Queues a peer's message, if there is room.
    pub fn peer(&self, msg: Message) -> Result<(), Refused<()>> {
        self.tx.try_send(Event::Peer(msg)).map_err(|err| match err {
            TrySendError::Full(_) => Refused::Full(()),
            TrySendError::Disconnected(_) => Refused::Closed,
        })
    }

    /// Queues a client's request, if fewer than [`CLIENT_EVENTS_QUEUED`] are queued (a status
    /// query need not wait for that) and the channel has room. A refused request hands its
    /// `reply` back, unused.
    pub fn client(
        &self,
        request: ClientRequest,
        reply: ClientReply,
    ) -> Result<(), Refused<ClientReply>> {
        let queued = match request.op {
            ClientOp::Status => None,
            _ => match QueuedClient::take(&self.clients_queued) {
                Some(queued) => Some(queued),
                None => return Err(Refused::Full(reply)),
            },
        };
        match self.tx.try_send(Event::Client {
            request,
            reply,
            queued,
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Event::Client { reply, .. })) => Err(Refused::Full(reply)),
            // (A peer's event cannot come back from this send.)
            Err(_) => Err(Refused::Closed),
        }
    }
}

/// One of the [`CLIENT_EVENTS_QUEUED`] places, held by a queued client event and given back
/// when it is dropped (taken by the loop, or never sent).
pub struct QueuedClient(Arc<AtomicUsize>);

impl QueuedClient {
    fn take(count: &Arc<AtomicUsize>) -> Option<QueuedClient> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < CLIENT_EVENTS_QUEUED).then_some(n + 1)
            })
            .ok()
            .map(|_| QueuedClient(count.clone()))
    }
}

impl Drop for QueuedClient {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where the answer to one client request goes: a slot reserved in its connection's bounded
/// response queue before the request was forwarded, and the request's place among the
/// connection's requests in flight (given back when the reply is used or dropped).
pub struct ClientReply {
    slot: OwnedPermit<ClientResponse>,
    _in_flight: OwnedSemaphorePermit,
}

impl ClientReply {
    pub fn new(slot: OwnedPermit<ClientResponse>, in_flight: OwnedSemaphorePermit) -> ClientReply {
        ClientReply {
            slot,
            _in_flight: in_flight,
        }
    }

    /// Puts the answer in its reserved slot: never blocks and never fails. If the connection
    /// is gone, the answer is dropped with its queue.
    pub fn send(self, response: ClientResponse) {
        self.slot.send(response);
    }
}

/// Where to send a peer's messages.
pub struct PeerLink {
    pub addr: String,
    pub tx: Sender<Message>,
    /// Bytes of messages in `tx` not yet taken by the link's writer (see [`queued_bytes`]).
    pub queued: Arc<AtomicUsize>,
}

/// At most this many bytes of messages wait for one peer. A paused peer (SIGSTOP) keeps its TCP
/// connection open while it reads nothing, so the writer blocks and the queue fills: bounded by
/// count alone, 4096 batches of entries or snapshot chunks of up to 1 MiB each could hold
/// gigabytes. 8 MiB is a few dozen full batches: far more than a live follower needs in flight.
pub const PEER_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// About how many bytes a message takes in a queue: its entries' and chunk's payloads plus a
/// fixed overhead.
pub fn queued_bytes(msg: &Message) -> usize {
    let payload = match &msg.body {
        Body::AppendEntries { entries, .. } => entries
            .iter()
            .map(|e| match &e.payload {
                Payload::Command(c) => c.len() + 32,
                Payload::Noop | Payload::Config(_) => 32,
            })
            .sum(),
        Body::InstallSnapshot { data, .. } => data.len(),
        _ => 0,
    };
    payload + 64
}

/// The outbound queues of every peer link: the real node's [`Network`].
pub struct PeerLinks {
    links: BTreeMap<NodeId, PeerLink>,
    dropped_messages: u64,
    /// Opens the links of members added later (none in unit tests).
    opener: Option<LinkOpener>,
}

impl PeerLinks {
    /// A link to every peer of the command line.
    pub fn open(opener: LinkOpener, opts: &NodeOptions) -> PeerLinks {
        PeerLinks {
            links: opener.open_all(opts),
            dropped_messages: 0,
            opener: Some(opener),
        }
    }

    /// Every peer's address, for leader hints.
    fn addrs(&self) -> BTreeMap<NodeId, String> {
        self.links
            .iter()
            .map(|(&id, p)| (id, p.addr.clone()))
            .collect()
    }

    /// A link to node `id`, which no configuration of this node names, if the gate admitted it
    /// and knows where it listens (a member added while this node lagged, now sending it the
    /// log: see [`super::peer_gate::PeerGate::check_newcomer`]). The next change of the
    /// configuration closes it unless the configuration names `id` by then.
    fn link_newcomer(&mut self, id: NodeId) {
        let Some(opener) = &self.opener else {
            return;
        };
        if let Some(sock) = opener.gate().newcomer(id) {
            tracing::info!(node = id, %sock, "opening a link to a peer not yet in the configuration");
            self.links.insert(id, opener.open(id, sock));
        }
    }
}

impl Network for PeerLinks {
    /// Opens a link to each new peer (or one whose address changed), admits it at the gate,
    /// and drops the links of nodes that are no longer members, which ends their tasks.
    fn set_peers(&mut self, peers: &BTreeMap<NodeId, String>) {
        let Some(opener) = &self.opener else {
            return;
        };
        let mut admitted = Vec::new();
        for (&id, addr) in peers {
            let Ok(sock) = addr.parse::<std::net::SocketAddr>() else {
                tracing::warn!(
                    node = id,
                    addr,
                    "member address is not IP:PORT; no link to it"
                );
                continue;
            };
            admitted.push((id, sock.ip()));
            if self
                .links
                .get(&id)
                .is_some_and(|l| l.addr == sock.to_string())
            {
                continue;
            }
            tracing::info!(node = id, %sock, "opening a link to a new member");
            self.links.insert(id, opener.open(id, sock));
        }
        opener.gate().admit_members(admitted);
        self.links.retain(|id, _| {
            let keep = peers.contains_key(id);
            if !keep {
                tracing::info!(
                    node = id,
                    "closing the link to a node that left the configuration"
                );
            }
            keep
        });
    }

    fn send(&mut self, msg: Message) {
        if !self.links.contains_key(&msg.to) {
            self.link_newcomer(msg.to);
        }
        let Some(peer) = self.links.get(&msg.to) else {
            return;
        };
        let bytes = queued_bytes(&msg);
        // An empty queue takes any message: one entry may be larger than the whole bound (up to
        // `MAX_COMMAND_BYTES`), and refusing it for ever would stall the follower for ever.
        let queued = peer.queued.load(Ordering::Relaxed);
        let full = queued > 0 && queued + bytes > PEER_QUEUE_BYTES;
        if full || peer.tx.try_send(msg).is_err() {
            // The link is down or slow; Raft retries on its own (heartbeats, probes).
            self.dropped_messages += 1;
            if self.dropped_messages.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_messages,
                    "outbound peer queue full; dropping messages"
                );
            }
        } else {
            peer.queued.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Answers go back on the channel of the connection the request came in on, into the slot the
/// connection reserved for it: the loop never waits for a slow client.
pub struct ResponseChannels;

impl Clients for ResponseChannels {
    type Reply = ClientReply;
    fn answer(&mut self, reply: Self::Reply, response: ClientResponse) {
        reply.send(response);
    }

    fn answer_with(
        &mut self,
        reply: Self::Reply,
        work: Box<dyn FnOnce() -> ClientResponse + Send>,
    ) {
        // A digest walks the whole store: 100 ms or more for a million keys.
        let spawned = std::thread::Builder::new()
            .name("digest".into())
            .spawn(move || reply.send(work()));
        if let Err(err) = spawned {
            // The reply went with the closure; the client sees its connection drop the
            // request and retries or gives up.
            tracing::warn!(%err, "cannot start a thread to answer a digest request");
        }
    }
}

/// When the loop's first tick falls: one tick from now, or, when `on_the_clock`, at the next
/// multiple of `tick` since the Unix epoch, after which every tick stays on the clock's grid.
///
/// That is what makes `fixed-election-timeout` the bug it is in the implementations it comes
/// from. There a follower's election timer fires a fixed time after the last heartbeat, and a
/// leader's heartbeat reaches every follower within microseconds, so they all stand at once.
/// This node counts its timeout in ticks, and ticks started when the process did: their phases
/// differ by up to a tick (10 ms), a hundred loopback round trips, so even with one fixed
/// timeout the first node to stand wins before another stands. With every node's ticks on the
/// same grid they stand on the same tick, each votes for itself, and the split repeats.
fn first_tick(now: Instant, tick: Duration, on_the_clock: bool) -> Instant {
    if !on_the_clock || tick.is_zero() {
        return now + tick;
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into_tick = Duration::from_nanos((since_epoch.as_nanos() % tick.as_nanos()) as u64);
    now + (tick - into_tick)
}

/// The real node's executor.
pub type NodeExecutor = Executor<NodeStorage, PeerLinks, ResponseChannels>;

pub struct RaftLoop {
    executor: NodeExecutor,
    tick: Duration,
    /// Ticks fall on multiples of `tick` of the wall clock, the same instants on every node of
    /// one machine (`--unsafe-bug fixed-election-timeout`, see [`first_tick`]).
    ticks_on_the_clock: bool,
    term: TermCell,
}

impl RaftLoop {
    pub fn new(
        raft: Raft,
        store: NodeStorage,
        kv: KvStore,
        links: PeerLinks,
        opts: &NodeOptions,
        term: TermCell,
    ) -> RaftLoop {
        let mut addrs = links.addrs();
        addrs.insert(opts.id, opts.listen.to_string());
        let mut executor = Executor::new(
            raft,
            store,
            links,
            ResponseChannels,
            addrs,
            &opts.unsafe_bugs,
        )
        .with_state(kv)
        .with_tick_ms(opts.tick_ms);
        executor.set_snapshot_policy(opts.snapshot);
        RaftLoop {
            executor,
            tick: Duration::from_millis(opts.tick_ms),
            ticks_on_the_clock: opts.has_bug(super::UnsafeBug::FixedElectionTimeout),
            term,
        }
    }

    /// Reports this counter of refused peer connections in `status`.
    pub fn count_refused_peers(&mut self, counter: Arc<AtomicU64>) {
        self.executor.refused_peers = counter;
    }

    /// Lets the `Reorder` admin request set this hook of the transport, and `status` report it.
    pub fn hook_reorder(&mut self, reorder: Arc<super::reorder::Reorder>) {
        self.executor.reorder = Some(reorder);
    }

    /// Runs until every event sender is gone (the network shut down) or storage fails.
    pub fn run(mut self, events: Receiver<Event>) -> anyhow::Result<()> {
        let mut next_tick = first_tick(Instant::now(), self.tick, self.ticks_on_the_clock);
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
            let mut skipped = 0;
            while now >= next_tick {
                if ticks < MAX_CATCHUP_TICKS {
                    self.executor.tick();
                    ticks += 1;
                } else {
                    skipped += 1;
                }
                next_tick += self.tick;
            }
            // The lease clock must not lose the ticks a stall swallowed.
            self.executor.skip_ticks(skipped);
            self.process_ready()?;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Peer(msg) => self.executor.step(msg),
            Event::Client {
                request,
                reply,
                queued,
            } => {
                drop(queued);
                self.executor.on_client(request, reply)
            }
        }
    }

    fn process_ready(&mut self) -> anyhow::Result<()> {
        self.executor.process_ready()?;
        self.term.set(self.executor.raft().term());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    /// `fixed-election-timeout` puts every node's ticks on the wall clock's grid of 10 ms, so
    /// that nodes started at different moments tick together; the correct node ticks one tick
    /// after it starts, whatever the clock says.
    #[test]
    fn ticks_on_the_clock_fall_on_multiples_of_the_tick_since_the_epoch() {
        let tick = Duration::from_millis(10);
        for _ in 0..20 {
            let now = Instant::now();
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let first = first_tick(now, tick, true);
            let wait = first - now;
            assert!(wait <= tick, "{wait:?}");
            let at = (wall + wait).as_nanos() % tick.as_nanos();
            // Within 1 ms of the grid: the two clocks were read microseconds apart.
            let off = at.min(tick.as_nanos() - at);
            assert!(off < 1_000_000, "{off} ns off the grid");
            assert_eq!(first_tick(now, tick, false), now + tick);
            std::thread::sleep(Duration::from_micros(1_700));
        }
    }

    /// Answer slots and in-flight places enough for every test request.
    struct Replies {
        tx: Sender<ClientResponse>,
        _rx: tokio::sync::mpsc::Receiver<ClientResponse>,
        in_flight: Arc<Semaphore>,
    }

    impl Replies {
        fn new() -> Replies {
            let (tx, rx) = tokio::sync::mpsc::channel(EVENT_QUEUE + 16);
            let in_flight = Arc::new(Semaphore::new(EVENT_QUEUE + 16));
            Replies {
                tx,
                _rx: rx,
                in_flight,
            }
        }

        fn reply(&self) -> ClientReply {
            let slot = self.tx.clone().try_reserve_owned().unwrap();
            ClientReply::new(slot, self.in_flight.clone().try_acquire_owned().unwrap())
        }
    }

    fn request(op: ClientOp) -> ClientRequest {
        ClientRequest {
            id: 1,
            client_id: 1,
            seq: 1,
            op,
        }
    }

    fn get() -> ClientRequest {
        request(ClientOp::Get { key: "k".into() })
    }

    #[test]
    fn clients_fill_only_their_share_and_status_queries_the_rest() {
        let replies = Replies::new();
        let (events, rx) = event_queue();
        for _ in 0..CLIENT_EVENTS_QUEUED {
            assert!(events.client(get(), replies.reply()).is_ok());
        }
        let refused = events.client(get(), replies.reply());
        assert!(matches!(refused, Err(Refused::Full(_))));
        // The rest of the queue is still there for status queries (and peers).
        for _ in CLIENT_EVENTS_QUEUED..EVENT_QUEUE {
            assert!(events
                .client(request(ClientOp::Status), replies.reply())
                .is_ok());
        }
        let full = events.client(request(ClientOp::Status), replies.reply());
        assert!(matches!(full, Err(Refused::Full(_))));
        // The loop taking one client event gives its place back, for one more.
        drop(rx.recv().unwrap());
        assert!(events.client(get(), replies.reply()).is_ok());
        assert!(matches!(
            events.client(get(), replies.reply()),
            Err(Refused::Full(_))
        ));
    }

    fn append_of(bytes: usize) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: Body::AppendEntries {
                prev_index: 0,
                prev_term: 0,
                entries: vec![crate::types::Entry {
                    term: 1,
                    index: 1,
                    payload: Payload::Command(vec![7; bytes]),
                }],
                commit: 0,
                read_round: 0,
            },
        }
    }

    #[test]
    fn an_empty_peer_queue_takes_a_message_larger_than_its_bound() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let queued = Arc::new(AtomicUsize::new(0));
        let link = PeerLink {
            addr: "127.0.0.12:7000".into(),
            tx,
            queued: queued.clone(),
        };
        let mut links = PeerLinks {
            links: BTreeMap::from([(2, link)]),
            dropped_messages: 0,
            opener: None,
        };
        let big = append_of(PEER_QUEUE_BYTES + 1);
        links.send(big.clone());
        assert_eq!(links.dropped_messages, 0);
        assert_eq!(queued.load(Ordering::Relaxed), queued_bytes(&big));
        // While it waits, the bound holds: nothing more that does not fit.
        links.send(append_of(1024));
        assert_eq!(links.dropped_messages, 1);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_gone_loop_refuses_as_closed() {
        let replies = Replies::new();
        let (events, rx) = event_queue();
        drop(rx);
        let closed = events.client(get(), replies.reply());
        assert!(matches!(closed, Err(Refused::Closed)));
    }
}
