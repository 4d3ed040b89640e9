//! riptide-proto: how clients, peers and the runner talk to a riptide node.
//!
//! Everything on the wire lives here, so that the node, the workload client, the runner's status
//! probe and the tests speak one protocol through one piece of framing code. This crate depends on
//! nothing of riptide's own.
//!
//! # A frame
//!
//! A connection is a sequence of frames in each direction. A frame is a 4-byte big-endian length
//! followed by that many bytes of MessagePack (rmp-serde, structs as maps with field names, so a
//! field can be added without breaking older readers):
//!
//! ```text
//! +----------------+---------------------------+
//! | len: u32 (BE)  | body: len bytes, msgpack  |
//! +----------------+---------------------------+
//! ```
//!
//! Byte strings (a Raft entry's command, a snapshot chunk, a nonce) are MessagePack bin: one
//! length and the bytes, never an array of integers (which costs up to two bytes per byte and a
//! decode each). A reader still accepts an array of integers where it expects bytes.
//!
//! # The size cap
//!
//! A body is at most [`MAX_FRAME_BYTES`] (16 MiB) in either direction. A reader refuses a larger
//! header before it reads or allocates the body; a writer refuses a larger message before it
//! writes a byte ([`Error::Oversized`], with the size and the limit). A frame that is cut short
//! ([`Error::Truncated`]) or does not decode as the expected message ([`Error::Decode`], naming
//! it) ends that connection too. A node logs such an error and closes the connection; it never
//! takes the node down.
//!
//! # The hello
//!
//! The first frame on every connection is a [`Hello`] that says who is talking:
//!
//! - [`Hello::Peer`]: a Raft peer, dialling from its own address ([`node_ip`]), naming its
//!   cluster. The accepting node admits it only if the source address is the one configured for
//!   that id and the cluster is its own, and, with a cluster secret, after a challenge–response
//!   ([`PeerAdmission`], [`PeerProof`]). Then only the peer's Raft messages follow, one way: node
//!   A sends to B over the connection A dialled, and B answers over the one B dialled. The node
//!   checks that every message is labelled from that peer and to itself.
//! - [`Hello::Client`]: a workload worker, the runner's status probe or `riptide client`. Then
//!   [`ClientRequest`]s go in and [`ClientResponse`]s come out.
//!
//! # Pipelining
//!
//! A client may send more requests before the answers to earlier ones arrive. Each response
//! carries the `id` of its request, and responses come back in the order the node resolves them,
//! which need not be the order of the requests: a client matches answers by `id` and drops those
//! to requests it has given up on. `id` only names a request on its connection; across retries
//! and connections a command is named by `(client_id, seq)`, which a node applies at most once.
//!
//! # The parts
//!
//! - [`message`]: the messages ([`Hello`], [`ClientRequest`], [`ClientResponse`], [`Status`]...);
//! - [`ids`]: [`NodeId`], [`Term`], [`Index`];
//! - [`frame`]: the frame header, the size cap, the body encoding, the tokio codec;
//! - [`connection`]: the async [`Connection`] and its halves [`FrameReader`], [`FrameWriter`];
//! - [`blocking`]: [`BlockingConnection`] and the [`status`] query for code outside tokio;
//! - [`address`]: the address rule, node `i` on 127.0.0.(10 + i) ([`node_ip`], [`node_addr`]).
//!
//! What it leaves out: the Raft messages themselves (`riptide_node::raft::Message`, framed with
//! the same code), TLS, compression, version negotiation.

pub mod address;
pub mod blocking;
pub mod connection;
pub mod error;
pub mod frame;
pub mod ids;
pub mod message;

pub use address::{node_addr, node_ip, MAX_NODE_ID};
pub use blocking::{state_digest, status, BlockingConnection};
pub use connection::{Connection, FrameReader, FrameWriter};
pub use error::{Error, Result};
pub use frame::{decode, encode, Frame, MAX_FRAME_BYTES};
pub use ids::{Index, NodeId, Term};
pub use message::{
    AdminDone, AdminOp, ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Hello,
    LeaderHint, MembershipStatus, PeerAdmission, PeerProof, ReorderStatus, Reply, Role,
    SnapshotStatus, StateDigest, Status, WriteOp,
};
