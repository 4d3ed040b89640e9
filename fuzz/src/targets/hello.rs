//! The first frame of every connection. What decodes must encode back to the same value.

use riptide_proto::{decode, encode, Hello};

use super::kind;
use crate::Target;

pub const TARGET: Target = Target {
    name: "hello",
    run,
    seeds,
};

fn run(input: &[u8]) -> String {
    match decode::<Hello>(input) {
        Ok(hello) => {
            let again: Hello = decode(&encode(&hello).expect("a decoded hello encodes"))
                .expect("an encoded hello decodes");
            assert_eq!(again, hello, "a hello survives a round trip");
            match hello {
                Hello::Client => "client".into(),
                Hello::Peer { cluster, nonce, .. } => format!(
                    "peer cluster {} nonce {:?}",
                    super::bucket(cluster.len()),
                    nonce.map(|n| n.len())
                ),
            }
        }
        Err(err) => format!("refused {}", kind(&err)),
    }
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        encode(&Hello::Client).unwrap(),
        encode(&Hello::peer(3, "riptide-20261202T0930-1f")).unwrap(),
        encode(&Hello::Peer {
            from: 2,
            cluster: "c".into(),
            nonce: Some(vec![7; 16]),
            listen: Some("127.0.0.12:7000".into()),
        })
        .unwrap(),
    ]
}
