//! Fuzzing riptide on the stable toolchain: structure-aware targets and a seeded driver.
//!
//! A node must survive anything a socket or a disk hands it. This crate throws generated and
//! mutated inputs at the five places where outside bytes enter a node, and requires that none of
//! them panics (or breaks the invariant the target states):
//!
//! | target | what it gets | what must hold |
//! |---|---|---|
//! | `frame` | a byte stream cut into random reads, through the frame codec | frames, errors or "need more", never a panic; an oversized header is refused before its body |
//! | `hello` | a frame body decoded as a [`riptide_proto::Hello`] | decodes or errs; what decodes re-encodes to itself |
//! | `client` | a frame body decoded as a client request, then applied to a state machine | no panic; a put's value is read back |
//! | `raft` | a stream of peer messages (any term, body, entries, snapshot chunk) fed to `Raft::step` with ticks and `Ready`s | no panic; the commit index never passes the log's end |
//! | `storage` | a data dir whose files (log segment, hard state, snapshot, cluster id) are valid ones with bytes flipped, cut or spliced | `LogStore::open` recovers or refuses with an error, never a panic; what it recovers is contiguous |
//!
//! Inputs are bytes, and each target reads its structure from them with
//! [`arbitrary::Unstructured`], so that a mutated byte changes one choice (a term, an entry
//! count, a message kind) rather than making the whole input nonsense. The driver
//! ([`driver`]) draws inputs from a seeded ChaCha generator: fresh random bytes, or a
//! mutation (bit flips, interesting integers, inserted, deleted or duplicated runs, splices) of
//! an input seen before that produced an outcome no earlier input did. A target's *outcome* is a
//! short label of what happened ("decoded AppendEntries", "refused: truncated frame"); the number of
//! distinct outcomes is the driver's measure of how much of the target it has reached. This is
//! not coverage instrumentation (that needs a nightly compiler or an external fuzzer), and the
//! figures say so.
//!
//! A panic is caught, its input saved to the crash directory, and the run fails; `riptide-fuzz
//! replay FILE` runs a saved input again.

pub mod driver;
pub mod mutate;
pub mod targets;

/// One fuzz target: a name and the function that runs one input, returning its outcome label.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> String,
    /// Valid inputs to start mutating from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.name)
    }
}

/// Every target, in a fixed order.
pub fn targets() -> Vec<Target> {
    vec![
        targets::frame::TARGET,
        targets::hello::TARGET,
        targets::client::TARGET,
        targets::raft::TARGET,
        targets::storage::TARGET,
    ]
}

/// The target called `name`, or an error listing the known ones.
pub fn target(name: &str) -> Result<Target, String> {
    targets()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = targets().iter().map(|t| t.name).collect();
            format!("unknown fuzz target `{name}`; known: {}", names.join(", "))
        })
}
