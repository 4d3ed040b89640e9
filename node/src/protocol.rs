//! The wire protocol, which lives in [`riptide_proto`] (see its docs for the frame, the hello,
//! the size cap and the pipelining rule). Re-exported here so that `riptide_node::protocol::*`
//! names the same types as `riptide_proto::*`.
//!
//! Peers frame this crate's [`crate::raft::Message`] with the same code after their hello.

pub use riptide_proto::{
    decode, encode, ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Hello,
    LeaderHint, Reply, Role, SnapshotStatus, StateDigest, Status, WriteOp, MAX_FRAME_BYTES,
};
