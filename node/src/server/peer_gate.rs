//! Who may speak Raft to this node: the admission of peer connections.
//!
//! Raft trusts its peers completely: one AppendEntries from "the leader" at a high enough term
//! can replace committed entries, and one message at a huge term forces an election. So a
//! connection that says [`Hello::Peer`] is admitted only after three checks, each of which names
//! what it saw when it refuses:
//!
//! 1. **The address.** Every node binds its own address and dials *from* it (see
//!    [`super::transport`]), so a genuine peer's source IP is the IP configured for its id. A
//!    hello claiming node 3 from any other address is refused. (Nodes that share one IP, say
//!    all on 127.0.0.1, cannot be told apart this way: use the secret.)
//! 2. **The cluster.** The hello names the dialer's cluster id, which each node keeps in its data
//!    dir ([`crate::storage::cluster_id`]). A node of another cluster, such as one left running
//!    from an earlier run on the same addresses, is refused.
//! 3. **The secret**, with `--cluster-secret-file`: a challenge–response in both directions. The
//!    dialer's hello carries a fresh 16-byte nonce; the acceptor answers with its own fresh nonce
//!    and an HMAC-SHA-256 over both (and the cluster id, both node ids, and a role label); the
//!    dialer checks that proof, answers with its own HMAC over the same values under the other
//!    label, and is welcome only if it matches (compared in constant time). A recorded exchange
//!    is useless later, because the acceptor's nonce is new each time; a proof cannot be
//!    reflected back, because the two directions sign different labels. This authenticates the
//!    peer; it does not encrypt or sign the messages that follow.
//!
//! **A newcomer**, a peer that no configuration this node has seen names, cannot pass check 1:
//! there is no configured address to compare. It is a member added while this node lagged
//! (down, or cut off), and when it leads, refusing it is a deadlock: this node learns of new
//! members only from the log that leader must send. So in a named cluster (or one with a secret)
//! it is admitted on checks 2 and 3, if its hello says where it listens, on the IP it dials
//! from; the gate remembers that address ([`PeerGate::newcomer`]) so that this node can answer
//! it, until the log names it. In an unnamed cluster without a secret it is refused.
//!
//! Each refusal is one log line on the refusing node (address, claimed id, reason), a count in
//! `status.refused_peers`, and a [`PeerAdmission::Refused`] with the reason to the dialer, which
//! logs it and waits [`REFUSED_BACKOFF`] before it tries again.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use riptide_proto::{Connection, FrameReader, FrameWriter, PeerAdmission, PeerProof};
use sha2::Sha256;
use tokio::io::AsyncWrite;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::options::NodeOptions;
use crate::protocol::Hello;
use crate::types::NodeId;

/// Bytes of each side's nonce.
pub const NONCE_LEN: usize = 16;
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// How long each step of the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A dialer that was refused waits this long before it dials that peer again, so that a node of
/// another cluster costs its victim one log line every few seconds, not hundreds.
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(5);

/// The cluster's shared secret, read from `--cluster-secret-file`. Never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads a secret file: its bytes, less a trailing newline; at least [`MIN_SECRET_LEN`].
    pub fn read(path: &Path) -> Result<Secret, String> {
        let mut bytes = std::fs::read(path).map_err(|e| {
            format!(
                "--cluster-secret-file {}: {e}; give a readable file holding the cluster's secret (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
                path.display()
            )
        })?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.len() < MIN_SECRET_LEN {
            return Err(format!(
                "--cluster-secret-file {} holds {} bytes; a secret needs at least {MIN_SECRET_LEN} (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
                path.display(),
                bytes.len()
            ));
        }
        Ok(Secret(bytes))
    }

    /// A secret from bytes (tests, and tools that speak the handshake).
    pub fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// The proof a dialling node `dialer` sends `acceptor` in its [`PeerProof`]: HMAC-SHA-256 over
    /// the dialer's label, the cluster id, both ids and both nonces (each length-prefixed).
    pub fn dialer_proof(
        &self,
        cluster: &str,
        dialer: NodeId,
        acceptor: NodeId,
        nonces: (&[u8], &[u8]),
    ) -> Vec<u8> {
        let link = Link { dialer, acceptor };
        let mac = self.mac(DIALER_ROLE, cluster, link, [nonces.0, nonces.1]);
        mac.finalize().into_bytes().to_vec()
    }

    /// This side's proof for `role` over the handshake's values.
    fn mac(&self, role: &str, cluster: &str, link: Link, nonces: [&[u8]; 2]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC accepts any key");
        let (dialer, acceptor) = (link.dialer.to_be_bytes(), link.acceptor.to_be_bytes());
        let parts: [&[u8]; 6] = [
            role.as_bytes(),
            cluster.as_bytes(),
            &dialer,
            &acceptor,
            nonces[0],
            nonces[1],
        ];
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

const ACCEPTOR_ROLE: &str = "riptide peer: accepting node";
const DIALER_ROLE: &str = "riptide peer: dialling node";

/// The two ends of one peer connection.
#[derive(Clone, Copy)]
struct Link {
    dialer: NodeId,
    acceptor: NodeId,
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum Refusal {
    /// The other side is not admitted, or did not admit us; the reason says which check failed.
    Refused(String),
    /// The connection broke or went silent during the handshake.
    Broken(String),
}

/// This node's admission rules and its count of refusals.
#[derive(Debug)]
pub struct PeerGate {
    me: NodeId,
    /// The IP each member dials from: the command line's peers, and every member a
    /// configuration has named since the process started ([`PeerGate::admit_members`]).
    members: RwLock<BTreeMap<NodeId, IpAddr>>,
    /// Empty: an unnamed cluster.
    cluster: String,
    secret: Option<Secret>,
    refused: Arc<AtomicU64>,
    /// The address this node listens on, told to the peers it dials.
    listen: Option<String>,
    /// Peers admitted that no configuration of this node names yet, at the address each said it
    /// listens on: where this node answers them until its log names them.
    newcomers: RwLock<BTreeMap<NodeId, SocketAddr>>,
}

/// A peer's hello, as the accepting side checks it.
#[derive(Debug)]
pub struct PeerHello<'a> {
    pub from: NodeId,
    pub cluster: &'a str,
    pub nonce: Option<Vec<u8>>,
    pub listen: Option<&'a str>,
}

fn describe_cluster(id: &str) -> String {
    if id.is_empty() {
        "an unnamed cluster (no --cluster-id)".to_string()
    } else {
        format!("cluster `{id}`")
    }
}

impl PeerGate {
    pub fn new(opts: &NodeOptions, cluster: Option<String>, secret: Option<Secret>) -> PeerGate {
        let members = opts.peers.iter().map(|(&id, a)| (id, a.ip())).collect();
        PeerGate::with_members(opts.id, members, cluster, secret).listening_on(opts.listen)
    }

    /// The gate, telling the peers it dials that it listens on `listen`.
    pub fn listening_on(mut self, listen: SocketAddr) -> PeerGate {
        self.listen = Some(listen.to_string());
        self
    }

    /// Where to answer node `id` if no configuration of this node names it: the address it said
    /// it listens on when it was admitted (see [`PeerGate::admit`]).
    pub fn newcomer(&self, id: NodeId) -> Option<SocketAddr> {
        let newcomers = self.newcomers.read().unwrap_or_else(|e| e.into_inner());
        newcomers.get(&id).copied()
    }

    /// A gate for node `me` whose peers dial from `members`.
    pub fn with_members(
        me: NodeId,
        members: BTreeMap<NodeId, IpAddr>,
        cluster: Option<String>,
        secret: Option<Secret>,
    ) -> PeerGate {
        PeerGate {
            me,
            members: RwLock::new(members),
            cluster: cluster.unwrap_or_default(),
            secret,
            refused: Arc::new(AtomicU64::new(0)),
            listen: None,
            newcomers: RwLock::new(BTreeMap::new()),
        }
    }

    /// Admits `members` from now on, each from its IP (a newer IP replaces an older one).
    /// Nodes are never taken out: a member that a configuration removed is still admitted, and
    /// the core ignores it (its votes count in no majority); refusing it would only make a node
    /// that is about to be added again, or that a lagging follower still counts, back off for
    /// [`REFUSED_BACKOFF`].
    pub fn admit_members(&self, members: impl IntoIterator<Item = (NodeId, IpAddr)>) {
        let mut known = self.members.write().unwrap_or_else(|e| e.into_inner());
        let mut newcomers = self.newcomers.write().unwrap_or_else(|e| e.into_inner());
        for (id, ip) in members {
            // A newcomer the log now names is a member: its configured address takes over.
            newcomers.remove(&id);
            if id != self.me && known.insert(id, ip) != Some(ip) {
                tracing::info!(node = id, %ip, "peer admitted from now on");
            }
        }
    }

    /// The refusal counter, for `status`.
    pub fn refused_counter(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    /// This node's hello to a peer: with a fresh nonce (returned too) if there is a secret.
    fn hello(&self) -> (Hello, Option<Vec<u8>>) {
        let nonce = self.secret.as_ref().map(|_| fresh_nonce());
        let hello = Hello::Peer {
            from: self.me,
            cluster: self.cluster.clone(),
            nonce: nonce.clone(),
            listen: self.listen.clone(),
        };
        (hello, nonce)
    }

    /// The address and cluster checks, on the hello alone. For a newcomer (see
    /// [`PeerGate::check_newcomer`]), the address to answer it at.
    fn check_claim(&self, remote: IpAddr, hello: &PeerHello) -> Result<Option<SocketAddr>, String> {
        let (from, cluster) = (hello.from, hello.cluster);
        if from == self.me {
            return Err("it claims to be this very node".into());
        }
        let expected = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&from)
            .copied();
        let Some(expected) = expected else {
            return self.check_newcomer(remote, hello).map(Some);
        };
        if remote != expected {
            return Err(format!(
                "node {from} dials from {expected}, not from {remote}"
            ));
        }
        if cluster != self.cluster {
            return Err(format!(
                "it belongs to {}, this node to {}",
                describe_cluster(cluster),
                describe_cluster(&self.cluster)
            ));
        }
        Ok(None)
    }

    /// A dialer whose id no configuration this node has seen names: a member added while this
    /// node lagged behind (cut off, or down). Refusing it is a deadlock whenever it leads, since
    /// this node learns of new members only from the log that leader must send. So in a named
    /// cluster (or one with a secret) it is admitted on the cluster id (and the secret), if it
    /// says where it listens and dials from that IP; it is answered there until the log names
    /// it, and from then on checked as any member. In an unnamed cluster without a secret, where
    /// the cluster check proves nothing, it is refused.
    fn check_newcomer(&self, remote: IpAddr, hello: &PeerHello) -> Result<SocketAddr, String> {
        let from = hello.from;
        if self.cluster.is_empty() && self.secret.is_none() {
            return Err(format!(
                "node {from} is not a member of this cluster as far as this node knows (an \
                 unnamed cluster without a secret admits no node it does not know: give \
                 --cluster-id)"
            ));
        }
        if hello.cluster != self.cluster {
            return Err(format!(
                "it belongs to {}, this node to {}",
                describe_cluster(hello.cluster),
                describe_cluster(&self.cluster)
            ));
        }
        let listen = hello.listen.and_then(|l| l.parse::<SocketAddr>().ok());
        match listen {
            Some(addr) if addr.ip() == remote => Ok(addr),
            Some(addr) => Err(format!(
                "node {from}, not in this node's configuration, says it listens on {addr} but dials from {remote}"
            )),
            None => Err(format!(
                "node {from} is not in this node's configuration and does not say where it listens"
            )),
        }
    }

    /// The accepting side: checks a peer's hello and runs the secret's challenge–response.
    /// On refusal, tells the dialer why, logs one line and counts it.
    pub async fn admit(
        &self,
        remote: SocketAddr,
        hello: PeerHello<'_>,
        frames: &mut FrameReader<OwnedReadHalf>,
        write_half: &mut OwnedWriteHalf,
    ) -> Result<(), Refusal> {
        let from = hello.from;
        let mut writer = FrameWriter::new(write_half);
        let mut newcomer = None;
        let verdict = match self.check_claim(remote.ip(), &hello) {
            Ok(answer_at) => {
                newcomer = answer_at;
                self.challenge(from, hello.nonce, frames, &mut writer).await
            }
            Err(reason) => Err(Refusal::Refused(reason)),
        };
        match verdict {
            Ok(()) => {
                if let Some(addr) = newcomer {
                    tracing::info!(
                        node = from,
                        %addr,
                        "admitted a peer no configuration of this node names yet (added while this node lagged?); answering it there"
                    );
                    let mut newcomers = self.newcomers.write().unwrap_or_else(|e| e.into_inner());
                    newcomers.insert(from, addr);
                }
                send(&mut writer, &PeerAdmission::Welcome).await
            }
            Err(Refusal::Refused(reason)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "refused a peer connection from {remote} claiming to be node {from}: {reason}"
                );
                let refusal = PeerAdmission::Refused {
                    reason: reason.clone(),
                };
                let _ = send(&mut writer, &refusal).await;
                Err(Refusal::Refused(reason))
            }
            Err(broken) => Err(broken),
        }
    }

    /// With a secret: challenge the dialer and check its proof. Without: the dialer must not
    /// have offered one either (the two nodes are configured differently).
    async fn challenge<W: AsyncWrite + Unpin>(
        &self,
        from: NodeId,
        theirs: Option<Vec<u8>>,
        frames: &mut FrameReader<OwnedReadHalf>,
        writer: &mut FrameWriter<W>,
    ) -> Result<(), Refusal> {
        let refused = |why: &str| Err(Refusal::Refused(why.to_string()));
        let (secret, theirs) = match (&self.secret, theirs) {
            (None, None) => return Ok(()),
            (None, Some(_)) => return refused("the peer offers a cluster secret but this node has none; start every node with the same --cluster-secret-file"),
            (Some(_), None) => return refused("this cluster requires its secret (--cluster-secret-file) and the peer offered none"),
            (Some(secret), Some(theirs)) => (secret, theirs),
        };
        if theirs.len() != NONCE_LEN {
            return refused("the peer's nonce is not 16 bytes");
        }
        let ours = fresh_nonce();
        let link = Link {
            dialer: from,
            acceptor: self.me,
        };
        let nonces = [&theirs[..], &ours[..]];
        let proof = secret.mac(ACCEPTOR_ROLE, &self.cluster, link, nonces);
        let challenge = PeerAdmission::Challenge {
            nonce: ours.clone(),
            proof: proof.finalize().into_bytes().to_vec(),
        };
        send(writer, &challenge).await?;
        let answer: PeerProof = recv(frames).await?;
        let expected = secret.mac(DIALER_ROLE, &self.cluster, link, nonces);
        if expected.verify_slice(&answer.proof).is_err() {
            return refused("wrong cluster secret: the peer's proof does not match");
        }
        Ok(())
    }

    /// The dialling side: says hello to `peer` on a fresh connection, answers its challenge and
    /// checks its proof; returns the half to send Raft messages on once admitted.
    pub async fn introduce(
        &self,
        stream: TcpStream,
        peer: NodeId,
    ) -> Result<FrameWriter<OwnedWriteHalf>, Refusal> {
        let (hello, ours) = self.hello();
        let conn = Connection::open(stream, &hello).await.map_err(broken)?;
        let (mut frames, mut writer) = conn.into_split();
        let link = Link {
            dialer: self.me,
            acceptor: peer,
        };
        let mut answered = false;
        loop {
            let refused = |why: String| Err(Refusal::Refused(why));
            match recv::<PeerAdmission>(&mut frames).await? {
                PeerAdmission::Challenge { .. } if answered => {
                    return refused(format!("node {peer} challenged us twice"));
                }
                PeerAdmission::Welcome if ours.is_some() && !answered => {
                    return refused(format!("node {peer} admitted us without checking the cluster secret: it has no --cluster-secret-file, or it is not node {peer}"));
                }
                PeerAdmission::Welcome => return Ok(writer),
                PeerAdmission::Refused { reason } => return refused(reason),
                PeerAdmission::Challenge { nonce, proof } => {
                    let (Some(secret), Some(ours)) = (&self.secret, &ours) else {
                        return refused(format!("node {peer} asks for a cluster secret, and this node has none (--cluster-secret-file)"));
                    };
                    let nonces = [&ours[..], &nonce[..]];
                    let theirs = secret.mac(ACCEPTOR_ROLE, &self.cluster, link, nonces);
                    if nonce.len() != NONCE_LEN || theirs.verify_slice(&proof).is_err() {
                        return refused(format!("node {peer} does not know the cluster secret: its proof does not match"));
                    }
                    let mine = secret.mac(DIALER_ROLE, &self.cluster, link, nonces);
                    let answer = PeerProof {
                        proof: mine.finalize().into_bytes().to_vec(),
                    };
                    send(&mut writer, &answer).await?;
                    answered = true;
                }
            }
        }
    }
}

fn fresh_nonce() -> Vec<u8> {
    let mut nonce = vec![0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    nonce
}

fn broken(e: riptide_proto::Error) -> Refusal {
    Refusal::Broken(e.to_string())
}

async fn send<W: AsyncWrite + Unpin, T: serde::Serialize>(
    writer: &mut FrameWriter<W>,
    msg: &T,
) -> Result<(), Refusal> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, writer.send(msg)).await {
        Err(_) => Err(Refusal::Broken("the handshake stalled".into())),
        Ok(sent) => sent.map_err(broken),
    }
}

async fn recv<T: serde::de::DeserializeOwned>(
    frames: &mut FrameReader<OwnedReadHalf>,
) -> Result<T, Refusal> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, frames.recv::<T>()).await {
        Err(_) => Err(Refusal::Broken(format!(
            "no answer within {HANDSHAKE_TIMEOUT:?} during the peer handshake"
        ))),
        Ok(Ok(Some(msg))) => Ok(msg),
        Ok(Ok(None)) => Err(Refusal::Broken("closed during the peer handshake".into())),
        Ok(Err(e)) => Err(broken(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn gate(me: NodeId, cluster: &str, secret: Option<&[u8]>) -> PeerGate {
        let members = [1, 2]
            .into_iter()
            .filter(|&id| id != me)
            .map(|id| (id, LOCAL));
        let cluster = (!cluster.is_empty()).then(|| cluster.to_string());
        PeerGate::with_members(
            me,
            members.collect(),
            cluster,
            secret.map(Secret::from_bytes),
        )
    }

    /// Accepts one connection on `listener` and runs `acceptor`'s admission on its hello.
    async fn accept_one(listener: &TcpListener, acceptor: &PeerGate) -> Result<(), String> {
        let (stream, remote) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut frames = FrameReader::new(read);
        let Some(Hello::Peer {
            from,
            cluster,
            nonce,
            listen,
        }) = frames.recv::<Hello>().await.unwrap()
        else {
            panic!("not a peer hello");
        };
        let hello = PeerHello {
            from,
            cluster: &cluster,
            nonce,
            listen: listen.as_deref(),
        };
        let admitted = acceptor.admit(remote, hello, &mut frames, &mut write).await;
        admitted.map_err(|e| format!("{e:?}"))
    }

    /// Node 2 dials node 1 through both gates over real loopback TCP: (dialer's, acceptor's) result.
    async fn handshake(
        dialer: &PeerGate,
        acceptor: &PeerGate,
    ) -> (Result<(), String>, Result<(), String>) {
        let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async { accept_one(&listener, acceptor).await };
        let dial = async {
            let stream = TcpStream::connect(addr).await.unwrap();
            dialer
                .introduce(stream, 1)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        };
        let (dialed, accepted) = tokio::join!(dial, accept);
        (dialed, accepted)
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn peers_of_one_cluster_with_one_secret_are_admitted() {
        let secret = b"0123456789abcdef-shared";
        let (dialer, acceptor) = (gate(2, "c1", Some(secret)), gate(1, "c1", Some(secret)));
        assert_eq!(run(handshake(&dialer, &acceptor)), (Ok(()), Ok(())));
        let (dialer, acceptor) = (gate(2, "c1", None), gate(1, "c1", None));
        assert_eq!(run(handshake(&dialer, &acceptor)), (Ok(()), Ok(())));
        assert_eq!(acceptor.refused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_wrong_secret_is_caught_by_the_dialer_before_it_proves_anything() {
        let dialer = gate(2, "c1", Some(b"the-wrong-secret-000"));
        let acceptor = gate(1, "c1", Some(b"the-right-secret-111"));
        let (dialed, accepted) = run(handshake(&dialer, &acceptor));
        // The acceptor proves itself first, so the dialer already sees the mismatch.
        assert!(dialed
            .unwrap_err()
            .contains("does not know the cluster secret"));
        assert!(accepted.is_err());
        assert_eq!(
            acceptor.refused.load(Ordering::Relaxed),
            0,
            "the dialer hung up first"
        );
    }

    #[test]
    fn a_secret_on_one_side_only_is_refused() {
        let with = gate(1, "c1", Some(b"0123456789abcdef"));
        let without = gate(2, "c1", None);
        let (dialed, accepted) = run(handshake(&without, &with));
        assert!(accepted.unwrap_err().contains("offered none"));
        assert!(
            dialed.unwrap_err().contains("offered none"),
            "the dialer is told why"
        );
        let with_dialer = gate(2, "c1", Some(b"0123456789abcdef"));
        let without_acceptor = gate(1, "c1", None);
        let (dialed, accepted) = run(handshake(&with_dialer, &without_acceptor));
        assert!(accepted.unwrap_err().contains("this node has none"));
        assert!(dialed.is_err());
        assert_eq!(with.refused.load(Ordering::Relaxed), 1);
        assert_eq!(without_acceptor.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn another_cluster_and_another_address_are_refused_naming_what_was_seen() {
        let (dialer, acceptor) = (gate(2, "old", None), gate(1, "new", None));
        let (dialed, accepted) = run(handshake(&dialer, &acceptor));
        let why = accepted.unwrap_err();
        assert!(
            why.contains("cluster `old`") && why.contains("cluster `new`"),
            "{why}"
        );
        assert!(dialed.unwrap_err().contains("cluster `old`"));
        let unnamed = gate(2, "", None);
        let (_, accepted) = run(handshake(&unnamed, &acceptor));
        assert!(accepted.unwrap_err().contains("unnamed cluster"));
        // Node 2 is configured at 127.0.0.2; the connection comes from 127.0.0.1.
        let elsewhere = [(2, IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)))];
        let strict =
            PeerGate::with_members(1, elsewhere.into_iter().collect(), Some("new".into()), None);
        let (_, accepted) = run(handshake(&gate(2, "new", None), &strict));
        let why = accepted.unwrap_err();
        assert!(
            why.contains("dials from 127.0.0.2, not from 127.0.0.1"),
            "{why}"
        );
        assert_eq!(acceptor.refused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_node_no_configuration_names_yet_is_admitted_in_a_named_cluster_and_answered_where_it_listens(
    ) {
        // Node 1 knows no node 2 (it lagged while 2 was added); 2 may be the leader that must
        // send it the log.
        let lagging = || PeerGate::with_members(1, BTreeMap::new(), Some("c1".into()), None);
        let listens = |g: PeerGate, port| g.listening_on(SocketAddr::new(LOCAL, port));
        let acceptor = lagging();
        let newcomer = listens(gate(2, "c1", None), 7002);
        assert_eq!(run(handshake(&newcomer, &acceptor)), (Ok(()), Ok(())));
        assert_eq!(acceptor.newcomer(2), Some(SocketAddr::new(LOCAL, 7002)));
        // Once a configuration names it, it is a member and no longer remembered as a newcomer.
        acceptor.admit_members([(2, LOCAL)]);
        assert_eq!(acceptor.newcomer(2), None);
        // It must say where it listens, on the IP it dials from, and be of this cluster.
        let acceptor = lagging();
        let (_, accepted) = run(handshake(&gate(2, "c1", None), &acceptor));
        assert!(accepted
            .unwrap_err()
            .contains("does not say where it listens"));
        let elsewhere = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)), 1);
        let liar = gate(2, "c1", None).listening_on(elsewhere);
        let (_, accepted) = run(handshake(&liar, &acceptor));
        assert!(accepted.unwrap_err().contains("but dials from 127.0.0.1"));
        let (_, accepted) = run(handshake(&listens(gate(2, "c2", None), 7002), &acceptor));
        assert!(accepted.unwrap_err().contains("cluster `c2`"));
        assert_eq!(acceptor.newcomer(2), None);
        // With a secret it must prove it first; a wrong one records nothing.
        let secret = b"0123456789abcdef-shared";
        let guarded = PeerGate::with_members(
            1,
            BTreeMap::new(),
            Some("c1".into()),
            Some(Secret::from_bytes(secret)),
        );
        let wrong = listens(gate(2, "c1", Some(b"the-wrong-secret-000")), 7002);
        assert!(run(handshake(&wrong, &guarded)).1.is_err());
        assert_eq!(guarded.newcomer(2), None);
        let right = listens(gate(2, "c1", Some(secret)), 7002);
        assert_eq!(run(handshake(&right, &guarded)), (Ok(()), Ok(())));
        // Unnamed and without a secret, the cluster check proves nothing: refused.
        let unnamed = PeerGate::with_members(1, BTreeMap::new(), None, None);
        let (_, accepted) = run(handshake(&listens(gate(2, "", None), 7002), &unnamed));
        assert!(accepted
            .unwrap_err()
            .contains("not a member of this cluster"));
    }

    #[test]
    fn a_recorded_proof_does_not_open_a_second_connection() {
        let secret = Secret::from_bytes(b"0123456789abcdef");
        let acceptor = gate(1, "c1", Some(b"0123456789abcdef"));
        let ours = vec![9u8; NONCE_LEN];
        let outcome = run(async {
            let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut recorded = None;
            let mut results = Vec::new();
            for _ in 0..2 {
                let accept = async { accept_one(&listener, &acceptor).await.is_ok() };
                let dial = async {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let hello = Hello::Peer {
                        from: 2,
                        cluster: "c1".into(),
                        nonce: Some(ours.clone()),
                        listen: None,
                    };
                    let conn = Connection::open(stream, &hello).await.unwrap();
                    let (mut frames, mut writer) = conn.into_split();
                    let Some(PeerAdmission::Challenge { nonce, .. }) = frames.recv().await.unwrap()
                    else {
                        panic!("no challenge");
                    };
                    // The first time, a correct proof, recorded; the second, the recording.
                    let proof = recorded
                        .clone()
                        .unwrap_or_else(|| secret.dialer_proof("c1", 2, 1, (&ours, &nonce)));
                    recorded = Some(proof.clone());
                    writer.send(&PeerProof { proof }).await.unwrap();
                    frames.recv::<PeerAdmission>().await.unwrap()
                };
                let (answer, admitted) = tokio::join!(dial, accept);
                results.push((admitted, answer));
            }
            results
        });
        assert!(outcome[0].0, "the first, live exchange is admitted");
        assert_eq!(outcome[0].1, Some(PeerAdmission::Welcome));
        assert!(!outcome[1].0, "the replayed proof is refused");
        assert!(
            matches!(&outcome[1].1, Some(PeerAdmission::Refused { reason }) if reason.contains("wrong cluster secret"))
        );
    }

    #[test]
    fn a_short_or_missing_secret_file_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        assert!(Secret::read(&short).unwrap_err().contains("at least 16"));
        assert!(Secret::read(&dir.path().join("missing"))
            .unwrap_err()
            .contains("readable file"));
        let good = dir.path().join("good");
        std::fs::write(&good, "0123456789abcdef\n").unwrap();
        assert_eq!(Secret::read(&good).unwrap().0, b"0123456789abcdef");
    }
}
