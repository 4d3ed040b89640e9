//! Transcript tests: scripts that drive an in-memory cluster of pure Raft cores, with the full
//! trace of what happened written below each command and compared on every run.
//!
//! A script (`node/tests/transcripts/<behaviour>.txt`) is a list of commands. Below each command,
//! after a `----` line, comes the output it must print, up to the next blank line. Lines starting
//! with `#` are comments. Assertions (`assert …`) have no output block: they check one fact each
//! and fail the test on their own, so regenerating the outputs can never accept a broken
//! behaviour. Run with `RIPTIDE_REGENERATE=1` to rewrite every output block with what the cluster
//! prints now (comments, commands and assertions stay as written); review the diff, then commit.
//!
//! ```text
//! cluster 3 prevote=false checkquorum=false
//! ----
//! n1 follower term=0 vote=none leader=none commit=0 applied=0 last=0@0
//! …
//!
//! campaign 1
//! ----
//! n1 role=candidate term=1 vote=1
//! n1->n2 RequestVote term=1 last=0@0
//! n1->n3 RequestVote term=1 last=0@0
//!
//! assert role 1 = candidate
//! ```
//!
//! # The trace
//!
//! - `n1 role=candidate term=1 vote=1`: a node's role, term, vote, leader, commit index or last
//!   log position (`last=index@term`) changed; only the changed fields are listed.
//! - `n1->n2 AppendEntries term=1 …`: a message was sent (the syntax is in [`format`]); `dropped:
//!   link cut` if a partition swallowed it. When a message is delivered it is printed again, with
//!   its effects on the recipient indented below it (`dropped: n2 is down` if it was not).
//! - `n1 apply 2@1 put k v`: the node applied a committed entry.
//! - Snapshots (see [`snapshots`]): `n1 snapshot 5@1 bytes=57 crc=0x… first=6` (taken; `first` is
//!   the first index left in the core's log), or `… ignored: holds 7@2`; `n3 write chunk 0..16`
//!   (an incoming chunk written to the node's buffer; `(new file; K bytes dropped)` when a chunk
//!   at offset 0 replaces an abandoned transfer); `n3 install 5@1 ok bytes=57 kept=0` (installed;
//!   `kept` durable entries after it) or `n3 install 5@1 failed: WHY` (length or checksum wrong);
//!   `n3 incoming byte 0 corrupted (16 bytes held)`; a message line ending `duplicated`.
//! - `n1 propose put k v at 2@1`, `n1 read 7 registered`, `n1 read 7 ready index=1`,
//!   `n1 read 7 failed`, and `refused: not leader (leader=…)` for either on a follower.
//! - `n2 follower term=1 vote=1 …`: a node's status line (printed by `status` and on every boot).
//!
//! # Commands
//!
//! Nodes are numbered 1..=N and may be written `2` or `n2`. A FILTER is any of `from=N to=N
//! type=KIND term=T rejected=true|false carries=INDEX` (KIND as in the trace, e.g.
//! `AppendEntries` or `InstallSnapshot`, case-insensitive; `rejected` means a refused vote or a
//! failed append; `carries` an AppendEntries holding that index).
//!
//! - `cluster N [prevote=B] [checkquorum=B] [seed=S] [max-batch=E] [max-inflight=M]
//!   [heartbeat=H] [election=MIN..MAX] [chunk=C]`: a fresh cluster (the core's defaults
//!   otherwise; seed 0). `chunk` is `max_snapshot_chunk`, the bytes of image per InstallSnapshot.
//! - `campaign N`: N starts an election now (a pre-vote first if pre-vote is on).
//! - `tick N [K]`: N's clock advances K ticks (default 1); messages stay in flight.
//! - `skip N K`: N's loop missed K ticks (a paused process) and reports them at once
//!   (`Raft::skip_ticks`): only the lease clock moves.
//! - `run R`: R rounds of "tick every live node once, then deliver until quiet"; prints only
//!   state changes, applied entries and reads, under the round they happened in.
//! - `deliver [FILTER] [count=K]`: delivers the matching messages in flight now, oldest first (at
//!   most K); the answers they provoke stay in flight.
//! - `stabilize [FILTER]`: delivers matching messages, answers included, until none is in flight.
//! - `drop [FILTER] [count=K]`: loses matching messages in flight.
//! - `duplicate [FILTER] [count=K]`: puts a copy of each matching message in flight (at most K)
//!   at the end of the network.
//! - `inject MESSAGE`: delivers a hand-written message (as the trace prints it) now.
//! - `partition 1 2 | 3`: cuts every link between the groups, both ways; `isolate N` cuts N off
//!   from all others; `heal` restores every link.
//! - `crash N`: N stops and loses its in-flight messages and its incoming snapshot buffer;
//!   `restart N` boots it from its durable hard state, snapshot and log (the state machine is
//!   loaded from the snapshot, the log starts after it).
//! - `set-durable N term=T vote=V|none log=T1,T2,…`: replaces N's durable state with entries of
//!   those terms (commands `r1`, `r2`, …) and no snapshot, and boots N from it.
//! - `truncate-log N last=I`: crashed N's disk loses every durable entry after I, acknowledged
//!   or not (a power cut with a lying fsync, a wiped data dir); its hard state stays. Prints
//!   `n3 durable log cut after 2: 2 entries left`; `restart N` boots it from what is left.
//! - `snapshot N [keep=K]`: N snapshots its state machine at its applied index and hands the
//!   image to the core, which discards its log up to that index less K entries (default 0); the
//!   durable state becomes the snapshot plus the entries after it.
//! - `corrupt-incoming N`: flips the first byte of the snapshot bytes N has received so far.
//! - `propose N COMMAND…`: proposes the rest of the line (opaque bytes to the core).
//! - `read N [id=K]`: starts a ReadIndex read (ids count up from 1 by default).
//! - `status [N…]`, `log N` (its durable snapshot, `snapshot 5@1 bytes=57`, then its durable
//!   entries), `network` (the messages in flight).
//! - `assert PROPERTY [NODE] [FILTER] OP VALUE` and `assert safety`, see [`assertion`]. Node
//!   properties: `role term vote leader commit last`, `entry NODE INDEX` (`2@1 noop`), `first`
//!   (the first index in the core's log), `match NODE PEER` (on a leader, its match index of
//!   PEER; `none` elsewhere), `snapshot` (the core's snapshot, `index@term`) and
//!   `snapshots-sent` (snapshots followers confirmed installing from it) of the running core;
//!   `applied` (index), `log` (the durable terms after the snapshot, e.g. `1 1 2`), `log-length`,
//!   `commands` (applied, no-ops left out, `, `-separated), `command-count`, `durable-term`,
//!   `durable-vote`, `durable-snapshot` (`index@term`), `incoming` (snapshot bytes received and
//!   held), `installs` (snapshots installed from a leader), `reads` (`id@index …`),
//!   `failed-reads`. Cluster properties: `leaders`, `leader-count`, `in-flight [FILTER]`,
//!   `delivered [FILTER]` (by the last command that was not an assertion), `last-sent` (the
//!   newest message in flight). `safety` checks Election Safety, State Machine Safety (the state
//!   machines agree, and each applied every entry right after the one before: never twice, never
//!   with a gap) and Log Matching (over the snapshot's entries and the log after it) over the
//!   whole run. A missing value reads `none`.
//!
//! # The state machine and snapshots
//!
//! A node's state machine is the list of entries it applied, from index 1; a snapshot image is
//! that list as text, one entry per line as the trace prints it. Carrying out a `Ready`, the
//! cluster writes `snapshot_chunks` to the node's buffer (a chunk must continue it; one at offset
//! 0 starts it over), and for `install` checks the buffer's length and CRC-32 against the request
//! (and that it decodes to entries ending at the snapshot's `index@term`): if they hold, the
//! snapshot becomes durable, the durable log keeps its entries after the
//! snapshot only if it holds the snapshot's last entry with the same term, and the state machine
//! is the snapshot's entries; either way the core hears the outcome (`install_finished`) and the
//! buffer is emptied.

pub mod assertion;
pub mod cluster;
pub mod command;
pub mod filter;
pub mod format;
pub mod script;
pub mod snapshots;
pub mod trace;

use std::path::Path;

use command::{Failure, Session};
use script::Item;

/// Compare the outputs with the file, or write the file with the outputs of this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Check,
    Regenerate,
}

impl Mode {
    /// `Regenerate` if `RIPTIDE_REGENERATE` is set to anything but `0` or the empty string.
    pub fn from_env() -> Mode {
        match std::env::var("RIPTIDE_REGENERATE") {
            Ok(v) if !v.is_empty() && v != "0" => Mode::Regenerate,
            _ => Mode::Check,
        }
    }
}

/// Runs one script. The error lists every failed assertion and (when checking) every output that
/// differs, each with `file:line`; a script error stops the run where it happened.
pub fn run_file(path: &Path, mode: Mode) -> Result<(), String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let items = script::parse(&text).map_err(|e| format!("{name}: {e}"))?;
    let mut session = Session::default();
    let mut failures = Vec::new();
    let mut outputs = Vec::new();
    for item in &items {
        let Item::Command {
            line,
            text: command,
            expected,
        } = item
        else {
            continue;
        };
        let at = format!("{name}:{line}: `{command}`");
        match session.run(command) {
            Ok(output) if script::is_assertion(command) => debug_assert!(output.is_empty()),
            Ok(output) => {
                if mode == Mode::Check && expected.as_ref() != Some(&output) {
                    failures.push(mismatch(&at, expected.as_deref(), &output));
                }
                outputs.push(output);
            }
            Err(Failure::Assertion(why)) => failures.push(format!("{at}: assertion failed: {why}")),
            Err(Failure::Script(why)) => {
                failures.push(format!("{at}: script error: {why}"));
                return Err(failures.join("\n\n"));
            }
        }
    }
    if mode == Mode::Regenerate {
        let rendered = script::render(&items, &outputs);
        if rendered != text {
            std::fs::write(path, rendered).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

fn mismatch(at: &str, expected: Option<&[String]>, actual: &[String]) -> String {
    match expected {
        None => format!(
            "{at}: no expected output (add a {} block, or run with RIPTIDE_REGENERATE=1); it prints:\n{}",
            script::SEPARATOR,
            actual.join("\n")
        ),
        Some(expected) => format!(
            "{at}: output differs (- expected, + actual; RIPTIDE_REGENERATE=1 accepts it):\n{}",
            script::diff(expected, actual)
        ),
    }
}
