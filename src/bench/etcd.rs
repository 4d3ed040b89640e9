//! The etcd target: a local etcd cluster that bench starts (Debian's `etcd-server`, binary
//! `etcd`), or a running one given with `--etcd-endpoints`; and the same ops through the
//! `etcd-client` crate (etcd's v3 gRPC API).
//!
//! Member i listens for clients on 127.0.0.(20+i):2379 and for peers on 127.0.0.(20+i):2380
//! (not the riptide nodes' 127.0.0.(10+i)), keeps its data in the bench folder, logs to
//! `e<i>.log` beside it, and runs under the same [`Supervisor`] as riptide's nodes: exact pids,
//! SIGKILLed at the end. etcd runs with its defaults otherwise (fsync on every commit, 100 ms
//! heartbeats, 1 s election timeout).
//!
//! Each client has its own connection (one gRPC channel) to the leader's endpoint, as each
//! riptide client has its own TCP connection to the leader. A get is etcd's default range
//! request, which is linearizable (`serializable = false`: a quorum read through ReadIndex).
//! A cas is a transaction: if the value is the expected one, put the new one, else get the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, KvClient, Txn, TxnOp, TxnOpResponse};
use riptide_nemesis::{NodeSpec, Supervisor};

use super::load::{Outcome, Process, Session};
use crate::exit::Exit;

/// The client port; the peer port is the next one.
const CLIENT_PORT: u16 = 2379;
/// How long a fresh etcd cluster may take to elect its first leader (its election timeout is
/// 1 s; a loaded machine may need a few rounds).
const ELECTION_WAIT: Duration = Duration::from_secs(20);

/// Member `i`'s (1-based) client address.
pub fn member_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 20 + i as u8], CLIENT_PORT))
}

/// The `etcd` binary on the PATH (or `RIPTIDE_ETCD`), or the one-line error saying how to get it.
pub fn find_etcd() -> Result<PathBuf, Exit> {
    if let Some(path) = std::env::var_os("RIPTIDE_ETCD") {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(Exit::bad_args(format!(
                "RIPTIDE_ETCD={} is not a file; point it at the etcd binary or unset it",
                path.display()
            ))),
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Exit::bad_args(
                "--target etcd needs the etcd binary, which is not on the PATH: apt-get install etcd-server (or pass --etcd-endpoints of a running etcd)",
            )
        })
}

/// An etcd cluster to measure.
pub struct EtcdCluster {
    pub endpoints: Vec<SocketAddr>,
    pub supervisor: Option<Arc<Supervisor>>,
}

impl EtcdCluster {
    /// Starts `n` members, their data and logs in `dir`.
    pub fn start(n: usize, etcd: &Path, dir: &Path) -> anyhow::Result<EtcdCluster> {
        let supervisor = Arc::new(Supervisor::new()?);
        let peers: Vec<String> = (1..=n).map(|i| format!("e{i}={}", peer_url(i))).collect();
        for i in 1..=n {
            for port in [CLIENT_PORT, CLIENT_PORT + 1] {
                let addr = SocketAddr::new(member_addr(i).ip(), port);
                if std::net::TcpListener::bind(addr).is_err() {
                    return Err(Exit::bad_args(format!(
                        "{addr} is already in use; stop whatever listens there (an etcd of your own? pass it as --etcd-endpoints)"
                    ))
                    .into());
                }
            }
            let client_url = format!("http://{}", member_addr(i));
            let spec = NodeSpec::new(i as u64, etcd, dir.join(format!("e{i}.log")))
                .args(["--name".to_string(), format!("e{i}")])
                .args([
                    "--data-dir".into(),
                    dir.join(format!("e{i}")).display().to_string(),
                ])
                .args(["--listen-client-urls".into(), client_url.clone()])
                .args(["--advertise-client-urls".into(), client_url])
                .args(["--listen-peer-urls".into(), peer_url(i)])
                .args(["--initial-advertise-peer-urls".into(), peer_url(i)])
                .args(["--initial-cluster".into(), peers.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "riptide-bench"])
                .args(["--logger", "zap", "--log-level", "warn"]);
            supervisor.spawn(spec)?;
        }
        Ok(EtcdCluster {
            endpoints: (1..=n).map(member_addr).collect(),
            supervisor: Some(supervisor),
        })
    }

    pub fn running(endpoints: &[SocketAddr]) -> EtcdCluster {
        EtcdCluster {
            endpoints: endpoints.to_vec(),
            supervisor: None,
        }
    }

    /// The index (0-based, into `endpoints`) of the member that leads, once every member
    /// answers and names the same leader.
    pub async fn leader(&self) -> anyhow::Result<usize> {
        let deadline = Instant::now() + ELECTION_WAIT;
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "the etcd cluster at {:?} has no leader every member names after {ELECTION_WAIT:?}; see e<i>.log in the bench folder",
                    self.endpoints
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for addr in &self.endpoints {
            let mut client = connect(*addr).await.ok()?;
            let status = client.status().await.ok()?;
            ids.push(status.header()?.member_id());
            leaders.push(status.leader());
        }
        let leader = *leaders.first()?;
        if leader == 0 || leaders.iter().any(|l| *l != leader) {
            return None;
        }
        ids.iter().position(|id| *id == leader)
    }

    pub fn processes(&self, leader: usize) -> Vec<Process> {
        (0..self.endpoints.len())
            .map(|i| Process {
                leader: i == leader,
                pid: self.supervisor.as_ref().and_then(|s| s.pid(i as u64 + 1)),
            })
            .collect()
    }

    /// One client with its own connection to the leader.
    pub async fn session(&self, leader: usize, op_timeout: Duration) -> anyhow::Result<Session> {
        let options = etcd_client::ConnectOptions::new()
            .with_timeout(op_timeout)
            .with_connect_timeout(Duration::from_secs(2));
        let url = format!("http://{}", self.endpoints[leader]);
        let client = etcd_client::Client::connect([url], Some(options)).await?;
        Ok(Session::Etcd(Box::new(client.kv_client())))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.shutdown();
        }
    }
}

fn peer_url(i: usize) -> String {
    format!("http://{}:{}", member_addr(i).ip(), CLIENT_PORT + 1)
}

async fn connect(addr: SocketAddr) -> Result<etcd_client::Client, etcd_client::Error> {
    let options = etcd_client::ConnectOptions::new()
        .with_timeout(Duration::from_secs(1))
        .with_connect_timeout(Duration::from_secs(1));
    etcd_client::Client::connect([format!("http://{addr}")], Some(options)).await
}

fn error(err: etcd_client::Error) -> Outcome {
    Outcome::Error(format!("etcd: {err}"))
}

pub async fn put(client: &mut KvClient, key: &str, value: &str) -> Outcome {
    match client.put(key, value, None).await {
        Ok(_) => Outcome::Done,
        Err(err) => error(err),
    }
}

pub async fn get(client: &mut KvClient, key: &str) -> Outcome {
    match client.get(key, None).await {
        Ok(_) => Outcome::Done,
        Err(err) => error(err),
    }
}

pub async fn cas(client: &mut KvClient, key: &str, expected: &str, new: &str) -> Outcome {
    let txn = Txn::new()
        .when([Compare::value(key, CompareOp::Equal, expected)])
        .and_then([TxnOp::put(key, new, None)])
        .or_else([TxnOp::get(key, None)]);
    match client.txn(txn).await {
        Ok(response) if response.succeeded() => Outcome::Done,
        Ok(response) => {
            let actual = response.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(get) => get
                    .kvs()
                    .first()
                    .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                _ => None,
            });
            Outcome::Mismatch(actual.unwrap_or_default())
        }
        Err(err) => error(err),
    }
}
