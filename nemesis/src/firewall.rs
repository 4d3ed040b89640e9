//! Network faults with iptables, inside the run's sandbox.
//!
//! # What a rule does to TCP
//!
//! Every rule lives in the `filter` table's **INPUT** chain (through the run's own chain, see
//! below) and matches one *directed link*: packets from node `src`'s address to node `dst`'s
//! address, as seen when they arrive at `dst`. A `DROP` there makes packets vanish silently:
//!
//! - a `connect()` from `src` to `dst` sends a SYN that never arrives and times out, exactly as
//!   when a cable is cut or a switch drops traffic; the sender learns nothing for seconds;
//! - data on an established connection is retransmitted with exponential backoff until TCP gives
//!   up (minutes) or the link heals, in which case the connection simply resumes.
//!
//! Why INPUT and not OUTPUT: a `DROP` in OUTPUT makes the *local* `connect()`/`send()` fail at
//! once with `EPERM`, which no real network does and which a node would handle as a local error,
//! not as a partition. On loopback every packet traverses both OUTPUT and INPUT, so INPUT is the
//! place that reproduces a network that loses packets.
//!
//! A partition is bidirectional (two rules per pair) unless it is asymmetric. An *asymmetric* cut
//! drops one direction only. TCP needs both directions to open a connection, so a one-way cut
//! still stops new connections both ways; on connections that were already open, data flows in
//! the open direction only (the receiver's ACKs are dropped, so the sender keeps retransmitting,
//! yet the bytes were delivered). UDP and ICMP see a clean one-way cut.
//!
//! *Loss* uses the `statistic` match: `-m statistic --mode random --probability P -j DROP` drops
//! each packet of the link independently with probability P (the kernel's random, not the run's
//! seed). TCP retransmits, so connections stay up but slow down, and timeouts fire sometimes.
//!
//! Clients connect from 127.0.0.1, which no rule names: as in Jepsen, a partition cuts only
//! node-to-node links, and clients sit outside it.
//!
//! # The run's own chain
//!
//! All rules go into one chain, [`CHAIN`], hooked into INPUT once at install. Healing is then a
//! single flush of that chain (`iptables -F riptide`), which cannot miss a rule. A whole fault is
//! applied atomically with one `iptables-restore --noflush`, so nodes never see half a partition.
//! Every command also passes `-w` (wait for the xtables lock): runs in different namespaces still
//! share the lock file `/run/xtables.lock`, and without `-w` a concurrent call fails.
//!
//! The firewall checks before each command that the calling thread is in the sandbox's network
//! namespace ([`Error::NotInSandbox`] otherwise), so it can never change the host's firewall.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::delay::Delayer;
use crate::error::{Error, Result};
use crate::sandbox::{NetnsId, Sandbox};
use crate::{node_ip, NodeId};

/// The run's own iptables chain. Inside the run's namespace the name cannot collide with anything
/// on the host.
pub const CHAIN: &str = "riptide";

/// The chain of the delay fault's NFQUEUE rules, hooked into OUTPUT: a packet is held as it
/// leaves its sender and meets [`CHAIN`] (in INPUT) only when it arrives, so a partition drops
/// what it cuts whatever delay its link has, the packets already in flight when the cut came
/// included (as a cable pulled mid-flight would). Created at the first delay.
pub const DELAY_CHAIN: &str = "riptide-delay";

/// The environment variable that overrides which `iptables` binary [`Firewall::install`] uses.
pub const IPTABLES_ENV: &str = "RIPTIDE_IPTABLES";

/// Directories searched for `iptables` after `$PATH`: an ordinary user's `$PATH` often lacks the
/// sbin directories where Debian installs it.
const SBIN_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"];

/// What a rule does to the packets of its link.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// Drop every packet.
    Drop,
    /// Drop each packet independently with this probability (0 < p ≤ 1).
    Loss(f64),
    /// Hold every packet this many ms (1..=[`crate::delay::MAX_DELAY_MS`]) before it goes on:
    /// NFQUEUE to the queue of that number, in [`DELAY_CHAIN`].
    Delay(u16),
}

/// One directed link cut: packets from `src` arriving at `dst` are dropped (all, or some).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rule {
    /// The sender's address.
    pub src: Ipv4Addr,
    /// The receiver's address; the rule acts as packets arrive there.
    pub dst: Ipv4Addr,
    /// Drop all, or a random fraction.
    pub kind: RuleKind,
}

impl Rule {
    /// The rule cutting the link from node `from` to node `to`.
    pub fn between(from: NodeId, to: NodeId, kind: RuleKind) -> Rule {
        Rule {
            src: node_ip(from),
            dst: node_ip(to),
            kind,
        }
    }

    /// The rule's iptables arguments after the chain: `-s A -d B [-m statistic ...] -j DROP`.
    pub fn matcher(&self) -> Vec<String> {
        let mut argv = vec![
            "-s".to_string(),
            self.src.to_string(),
            "-d".to_string(),
            self.dst.to_string(),
        ];
        match self.kind {
            RuleKind::Drop => argv.extend(["-j", "DROP"].map(String::from)),
            RuleKind::Loss(p) => {
                argv.extend(
                    ["-m", "statistic", "--mode", "random", "--probability"].map(String::from),
                );
                argv.push(p.to_string());
                argv.extend(["-j", "DROP"].map(String::from));
            }
            RuleKind::Delay(ms) => {
                argv.extend(["-j", "NFQUEUE", "--queue-num"].map(String::from));
                argv.push(ms.to_string());
                argv.push("--queue-bypass".to_string());
            }
        }
        argv
    }

    /// The chain the rule goes in: [`DELAY_CHAIN`] for a delay, [`CHAIN`] for the rest.
    pub fn chain(&self) -> &'static str {
        match self.kind {
            RuleKind::Delay(_) => DELAY_CHAIN,
            RuleKind::Drop | RuleKind::Loss(_) => CHAIN,
        }
    }

    /// The rule as appended to its chain: `-A riptide -s A -d B ... -j DROP`.
    pub fn append_spec(&self) -> Vec<String> {
        let mut argv = vec!["-A".to_string(), self.chain().to_string()];
        argv.extend(self.matcher());
        argv
    }

    /// The equivalent shell command, as recorded in the history:
    /// `iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP`.
    pub fn command(&self) -> String {
        format!("iptables {}", self.append_spec().join(" "))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.command())
    }
}

/// The command that heals every link, as recorded in the history.
pub fn heal_command() -> String {
    format!("iptables -F {CHAIN}")
}

/// The run's iptables chain, installed in the sandbox's namespace.
///
/// Dropping it flushes the chain, unhooks it from INPUT and deletes it (when dropped on a thread
/// inside the sandbox; elsewhere it leaves them, and they vanish with the namespace).
#[derive(Debug)]
pub struct Firewall {
    iptables: PathBuf,
    iptables_restore: PathBuf,
    netns: NetnsId,
    /// The rules currently in the chain, in the order applied.
    applied: Mutex<Vec<Rule>>,
    /// The delay thread and [`DELAY_CHAIN`], once a delay rule has been applied.
    delayer: Mutex<Option<Delayer>>,
}

impl Firewall {
    /// Finds `iptables`, checks that it works, creates the run's chain and hooks it into INPUT.
    ///
    /// Fails with one line and the fix if iptables is missing or does not work here.
    ///
    /// `$RIPTIDE_IPTABLES`, if set, names the binary to use instead (e.g. `iptables-legacy`, or a
    /// path that does not exist, to see what a machine without iptables gets).
    pub fn install(sandbox: &Sandbox) -> Result<Firewall> {
        if let Some(path) = std::env::var_os(IPTABLES_ENV) {
            return Firewall::install_with(sandbox, Path::new(&path));
        }
        let iptables = find_binary("iptables").ok_or_else(|| Error::IptablesMissing {
            looked_for: format!("iptables on $PATH and in {}", SBIN_DIRS.join(", ")),
        })?;
        Firewall::install_with(sandbox, &iptables)
    }

    /// Like [`Firewall::install`] with an explicit `iptables` binary; `iptables-restore` is taken
    /// from the same directory.
    pub fn install_with(sandbox: &Sandbox, iptables: &Path) -> Result<Firewall> {
        if !iptables.is_file() {
            return Err(Error::IptablesMissing {
                looked_for: iptables.display().to_string(),
            });
        }
        let iptables_restore = iptables.with_file_name("iptables-restore");
        if !iptables_restore.is_file() {
            return Err(Error::IptablesMissing {
                looked_for: iptables_restore.display().to_string(),
            });
        }
        let firewall = Firewall {
            iptables: iptables.to_path_buf(),
            iptables_restore,
            netns: sandbox.netns(),
            applied: Mutex::new(Vec::new()),
            delayer: Mutex::new(None),
        };
        firewall.iptables(&["-N", CHAIN])?;
        firewall.iptables(&["-I", "INPUT", "-j", CHAIN])?;
        tracing::debug!(chain = CHAIN, "iptables chain installed in the sandbox");
        Ok(firewall)
    }

    /// Adds `rules` to the chain, all at once (one `iptables-restore --noflush`).
    ///
    /// Returns the equivalent commands, one per rule, for the history.
    pub fn apply(&self, rules: &[Rule]) -> Result<Vec<String>> {
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        self.restore(rules, false)
    }

    /// Replaces every cut of the run's chain by `rules` in one iptables-restore transaction:
    /// no link is open for a moment in between (a flush then an append would let a deposed
    /// leader's heartbeat through). Delays stay. Returns the commands, the flush first.
    pub fn recut(&self, rules: &[Rule]) -> Result<Vec<String>> {
        let mut commands = vec![heal_command()];
        commands.extend(self.restore(rules, true)?);
        Ok(commands)
    }

    fn restore(&self, rules: &[Rule], flush_first: bool) -> Result<Vec<String>> {
        self.prepare_delays(rules)?;
        let mut script = String::from("*filter\n");
        if flush_first {
            script.push_str(&format!("-F {CHAIN}\n"));
        }
        for rule in rules {
            script.push_str(&rule.append_spec().join(" "));
            script.push('\n');
        }
        script.push_str("COMMIT\n");
        self.check_namespace()?;
        let command_line = format!(
            "iptables-restore -w --noflush (with {} rules{}{})",
            rules.len(),
            if flush_first {
                ", after -F riptide"
            } else {
                ""
            },
            rules
                .first()
                .map(|r| format!(", the first `{}`", r.append_spec().join(" ")))
                .unwrap_or_default()
        );
        let mut child = Command::new(&self.iptables_restore)
            .args(["-w", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(&self.iptables_restore, e))?;
        let written = child
            .stdin
            .take()
            .expect("stdin was piped")
            .write_all(script.as_bytes());
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("waiting for {command_line}"), e))?;
        if !out.status.success() || written.is_err() {
            return Err(Error::IptablesFailed {
                command: command_line,
                stderr: one_line(&out.stderr),
            });
        }
        let mut applied = self.applied.lock().expect("poisoned");
        if flush_first {
            applied.retain(|r| r.chain() != CHAIN);
        }
        applied.extend_from_slice(rules);
        drop(applied);
        Ok(rules.iter().map(Rule::command).collect())
    }

    /// Before a delay rule sends packets to its queue: the delay thread started, its chain
    /// created and hooked into OUTPUT, and every queue of `rules` bound.
    fn prepare_delays(&self, rules: &[Rule]) -> Result<()> {
        let delays: Vec<u16> = rules
            .iter()
            .filter_map(|r| match r.kind {
                RuleKind::Delay(ms) => Some(ms),
                _ => None,
            })
            .collect();
        if delays.is_empty() {
            return Ok(());
        }
        let mut delayer = self.delayer.lock().expect("poisoned");
        if delayer.is_none() {
            self.check_namespace()?;
            let started = Delayer::start()?;
            self.iptables(&["-N", DELAY_CHAIN])?;
            self.iptables(&["-A", "OUTPUT", "-j", DELAY_CHAIN])?;
            *delayer = Some(started);
        }
        delayer.as_ref().expect("started above").ensure(&delays)
    }

    /// Heals every link: flushes the chain (and the delay chain, if a delay was ever applied).
    /// Returns the command, for the history.
    pub fn heal(&self) -> Result<String> {
        self.iptables(&["-F", CHAIN])?;
        let mut command = heal_command();
        if self.delayer.lock().expect("poisoned").is_some() {
            self.iptables(&["-F", DELAY_CHAIN])?;
            command.push_str(&format!("; iptables -F {DELAY_CHAIN}"));
        }
        self.applied.lock().expect("poisoned").clear();
        Ok(command)
    }

    /// The rules currently in the chain, as this firewall applied them.
    pub fn rules(&self) -> Vec<Rule> {
        self.applied.lock().expect("poisoned").clone()
    }

    /// The chain as the kernel has it (`iptables -S riptide`), one rule a line; for tests and
    /// debugging.
    pub fn listing(&self) -> Result<String> {
        self.iptables(&["-S", CHAIN])
    }

    /// Runs `iptables -w ARGS` inside the sandbox and returns its stdout.
    fn iptables(&self, args: &[&str]) -> Result<String> {
        self.check_namespace()?;
        let command_line = format!("iptables -w {}", args.join(" "));
        let out = Command::new(&self.iptables)
            .arg("-w")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(&self.iptables, e))?;
        if !out.status.success() {
            return Err(Error::IptablesFailed {
                command: command_line,
                stderr: one_line(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn check_namespace(&self) -> Result<()> {
        match crate::sandbox::current_netns() {
            Ok(ns) if ns == self.netns => Ok(()),
            _ => Err(Error::NotInSandbox),
        }
    }

    fn spawn_error(&self, binary: &Path, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::IptablesMissing {
                looked_for: binary.display().to_string(),
            }
        } else {
            Error::io(format!("running {}", binary.display()), e)
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if self.check_namespace().is_err() {
            tracing::debug!("firewall dropped outside its namespace; its rules go with it");
            return;
        }
        // The delay chain first, then the thread: held packets leave once no rule sends more.
        if let Some(delayer) = self.delayer.lock().expect("poisoned").take() {
            for args in [
                &["-F", DELAY_CHAIN][..],
                &["-D", "OUTPUT", "-j", DELAY_CHAIN][..],
                &["-X", DELAY_CHAIN][..],
            ] {
                if let Err(e) = self.iptables(args) {
                    tracing::warn!("cleaning up the run's delay chain: {e}");
                }
            }
            drop(delayer);
        }
        for args in [
            &["-F", CHAIN][..],
            &["-D", "INPUT", "-j", CHAIN][..],
            &["-X", CHAIN][..],
        ] {
            if let Err(e) = self.iptables(args) {
                tracing::warn!("cleaning up the run's iptables chain: {e}");
            }
        }
    }
}

/// Looks `name` up on `$PATH`, then in the sbin directories.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A command's stderr folded into one line.
fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "no message".to_string()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rule_is_exact_iptables_argv() {
        let rule = Rule::between(1, 2, RuleKind::Drop);
        assert_eq!(
            rule.append_spec(),
            [
                "-A",
                "riptide",
                "-s",
                "127.0.0.11",
                "-d",
                "127.0.0.12",
                "-j",
                "DROP"
            ]
        );
        assert_eq!(
            rule.to_string(),
            "iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP"
        );
    }

    #[test]
    fn loss_rule_uses_the_statistic_match() {
        let rule = Rule::between(3, 1, RuleKind::Loss(0.25));
        assert_eq!(
            rule.command(),
            "iptables -A riptide -s 127.0.0.13 -d 127.0.0.11 \
             -m statistic --mode random --probability 0.25 -j DROP"
        );
    }

    #[test]
    fn heal_is_a_flush_of_the_run_chain() {
        assert_eq!(heal_command(), "iptables -F riptide");
    }

    #[test]
    fn stderr_is_folded_into_one_line() {
        assert_eq!(one_line(b"a\n\n  b \n"), "a; b");
        assert_eq!(one_line(b""), "no message");
    }
}
