//! The crate's one error type.
//!
//! Every message is one line that says what went wrong and, where the user can do something about
//! it, the fix: the runner prints these as they are.

use std::path::PathBuf;

use crate::NodeId;

/// Everything that can go wrong in the nemesis crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused to create the run's network namespace.
    #[error(
        "cannot create the run's private network namespace ({reason}); fix: run as root, or \
         enable unprivileged user namespaces (sysctl -w user.max_user_namespaces=10000, and on \
         Debian/Ubuntu kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0)"
    )]
    NamespaceUnavailable { reason: String },

    /// `sandbox::enter` was called after other threads had started.
    #[error(
        "sandbox::enter() must run before any other thread starts, but this process has {threads} \
         threads; call it first thing in main, before building the tokio runtime"
    )]
    NotSingleThreaded { threads: usize },

    /// No `iptables` binary could be found.
    #[error(
        "iptables not found (looked for {looked_for}); fix: apt-get install iptables \
         (only partition and loss need it: kill and pause work without)"
    )]
    IptablesMissing { looked_for: String },

    /// `iptables` exists but a command failed (no kernel support, no permission, bad rule).
    #[error(
        "iptables does not work here: `{command}` failed: {stderr}; fix: apt-get install iptables, \
         run as root (or inside the run's user namespace), and make sure the nf_tables or ip_tables \
         kernel module can load"
    )]
    IptablesFailed { command: String, stderr: String },

    /// The delay fault could not hold packets (no NFQUEUE in the kernel, no permission).
    #[error("the delay fault cannot slow links here: {what}; use the other network faults (partition, loss) instead")]
    DelayUnavailable { what: String },

    /// An iptables command was about to run outside the run's own network namespace.
    #[error(
        "refusing to run iptables from a thread outside the run's network namespace (it would \
         change the host's firewall); call it from a thread started after sandbox::enter()"
    )]
    NotInSandbox,

    /// The spec asks for network faults but the nemesis was given no firewall.
    #[error(
        "--nemesis {spec} needs iptables inside a private network namespace, which this run does \
         not have; fix: apt-get install iptables and run as root, or use --nemesis kill,pause"
    )]
    NetworkFaultsUnavailable { spec: String },

    /// A disk fault was planned but the runner gave the nemesis no disks.
    #[error(
        "power-cut and corrupt need the nodes' disks, which this nemesis was not given \
         (Nemesis::with_disks)"
    )]
    DisksUnavailable,

    /// A node process could not be started.
    #[error("cannot start {}: {reason}", path.display())]
    Spawn { path: PathBuf, reason: String },

    /// The supervisor knows no node with this id.
    #[error("no node {0} is supervised")]
    UnknownNode(NodeId),

    /// A node was registered twice.
    #[error("node {0} is already supervised")]
    DuplicateNode(NodeId),

    /// A process action that does not fit the node's current state (e.g. pausing a killed node).
    #[error("cannot {action} node {id}: it is {state}")]
    BadState {
        id: NodeId,
        state: String,
        action: &'static str,
    },

    /// A fault was started while another one is still active.
    #[error("cannot start a {new} fault: a {active} fault is still active; stop it first")]
    FaultActive { new: String, active: String },

    /// A `--nemesis` spec that does not parse.
    #[error("invalid --nemesis `{spec}`: {reason}")]
    Spec { spec: String, reason: String },

    /// A fault that cannot be built on this many nodes.
    #[error("{what} needs at least {min} nodes, the cluster has {n}")]
    TooFewNodes { what: String, min: usize, n: usize },

    /// Any other I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done when it happened.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
