//! The wire protocol, which lives in [`riptide_proto`] (see its docs for the frame, the hello,
//! the size cap and the pipelining rule). Re-exported here so that `riptide_node::protocol::*`
//! names the same types as `riptide_proto::*`.
//!
//! Peers frame this crate's [`crate::raft::Message`] with the same code after their hello.

pub use riptide_proto::{
    decode, encode, AdminDone, AdminOp, ClientOp, ClientRequest, ClientResponse, ClientResult,
    FailReason, Hello, LeaderHint, MembershipStatus, ReorderStatus, Reply, Role, SnapshotStatus,
    StateDigest, Status, WriteOp, MAX_FRAME_BYTES,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Body, Message};
    use crate::types::{Entry, Payload, SnapshotMeta};

    fn append_with(command: Vec<u8>) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: Body::AppendEntries {
                prev_index: 4,
                prev_term: 3,
                entries: vec![Entry {
                    term: 3,
                    index: 5,
                    payload: Payload::Command(command),
                }],
                commit: 4,
                read_round: 9,
            },
        }
    }

    /// The MessagePack bin header of `len` bytes (bin 8, 16 or 32).
    fn bin_header(len: usize) -> Vec<u8> {
        match len {
            0..=0xff => vec![0xc4, len as u8],
            0x100..=0xffff => [&[0xc5][..], &(len as u16).to_be_bytes()].concat(),
            _ => [&[0xc6][..], &(len as u32).to_be_bytes()].concat(),
        }
    }

    #[test]
    fn a_command_goes_on_the_wire_as_bin_bytes_not_an_array_of_integers() {
        // Bytes at or above 0x80 took two bytes each as integers.
        let command: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
        let body = encode(&append_with(command.clone())).unwrap();
        let mut expected = bin_header(command.len());
        expected.extend_from_slice(&command);
        let at = body
            .windows(expected.len())
            .position(|w| w == expected)
            .expect("the command's bytes appear as one bin value");
        assert!(at > 0);
        assert!(body.len() < command.len() + 200, "{} bytes", body.len());
        assert_eq!(decode::<Message>(&body).unwrap(), append_with(command));
    }

    #[test]
    fn the_largest_command_a_leader_takes_fits_one_append_entries_frame() {
        use crate::server::executor::MAX_COMMAND_BYTES;
        // Every number as large as it can be, so that each takes its longest encoding.
        let mut msg = append_with(vec![0xff; MAX_COMMAND_BYTES]);
        msg.term = u64::MAX;
        if let Body::AppendEntries {
            prev_index,
            prev_term,
            entries,
            commit,
            read_round,
        } = &mut msg.body
        {
            (*prev_index, *prev_term, *commit, *read_round) =
                (u64::MAX, u64::MAX, u64::MAX, u64::MAX);
            entries[0].term = u64::MAX;
            entries[0].index = u64::MAX;
        }
        let frame = riptide_proto::Frame::encode(&msg).expect("fits a frame");
        assert!(frame.as_bytes().len() <= MAX_FRAME_BYTES + 4);
        // And a get's answer carrying a value of that size fits too.
        let answer = ClientResponse {
            id: u64::MAX,
            result: ClientResult::Ok(Reply::Value(Some("x".repeat(MAX_COMMAND_BYTES)))),
        };
        riptide_proto::Frame::encode(&answer).expect("fits a frame");
    }

    #[test]
    fn a_snapshot_chunk_goes_on_the_wire_as_bin_bytes() {
        let data = vec![0xab; 70_000];
        let msg = Message {
            from: 1,
            to: 2,
            term: 3,
            body: Body::InstallSnapshot {
                meta: SnapshotMeta {
                    last_index: 10,
                    last_term: 3,
                    voters: vec![1, 2, 3],
                    learners: vec![],
                    outgoing: vec![],
                    addresses: Default::default(),
                },
                offset: 0,
                data: data.clone(),
                total_len: 70_000,
                checksum: 7,
                read_round: 1,
            },
        };
        let body = encode(&msg).unwrap();
        let mut expected = bin_header(data.len());
        expected.extend_from_slice(&data[..16]);
        assert!(body.windows(expected.len()).any(|w| w == expected));
        assert!(body.len() < data.len() + 300, "{} bytes", body.len());
        assert_eq!(decode::<Message>(&body).unwrap(), msg);
    }

    #[test]
    fn a_command_sent_as_an_array_of_integers_still_decodes() {
        // What a node built before payloads went as bin sends: the same shape, a plain Vec<u8>.
        #[derive(serde::Serialize)]
        enum OldPayload {
            Command(Vec<u8>),
        }
        #[derive(serde::Serialize)]
        struct OldEntry {
            term: u64,
            index: u64,
            payload: OldPayload,
        }
        let old = OldEntry {
            term: 3,
            index: 5,
            payload: OldPayload::Command(vec![1, 200, 255]),
        };
        let entry: Entry = decode(&encode(&old).unwrap()).unwrap();
        assert_eq!(entry.payload, Payload::Command(vec![1, 200, 255]));
    }
}
