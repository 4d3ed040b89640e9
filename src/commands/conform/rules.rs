//! The rules of the node contract that `riptide conform` checks, one line each, and how a
//! finding about one is printed.
//!
//! Each rule has a short id (what the output and the tests name), the sentence of
//! `docs/node-contract.md` it checks, and the heading of that document where the rule is
//! explained. A check reports a [`Verdict`] per rule: what it did and what it saw, in enough
//! detail that the author of the node can reproduce it by hand.

/// One rule of the contract.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// The id in the output: `FAIL  status  ...`.
    pub id: &'static str,
    /// The rule, as the contract states it.
    pub says: &'static str,
    /// The heading of `docs/node-contract.md` that explains it.
    pub section: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $section:literal, $says:literal;)*) => {
        $(pub const $name: Rule = Rule { id: $id, says: $says, section: $section };)*
        /// Every rule, in the order the checks reach them.
        pub const ALL: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    FLAGS = "flags", "Command line",
        "the node starts with the flags the bench passes and keeps running";
    LISTEN = "listen", "Addresses",
        "each node accepts TCP connections on its --listen address within 10 s of starting";
    STATUS = "status", "The status request",
        "every node answers Status at once, leader or not, with its own id, its role and term and consistent log positions";
    ELECTION = "election", "The status request",
        "a leader is elected within the election timeout and every node names it, in its term";
    GET = "get", "Requests and answers",
        "a read of a key never written answers Ok(Value(nil)); a read after a write answers the value written";
    PUT = "put", "Requests and answers",
        "a put answers Ok(Done)";
    CAS = "cas", "Requests and answers",
        "a cas answers Ok(Done) if the value matched, Fail(CasMismatch{actual}) if not, Fail(KeyMissing) on a key never written";
    APPEND = "append", "Requests and answers",
        "an append answers Ok(Done) and concatenates (a key never written counts as empty)";
    EXACTLY_ONCE = "exactly-once", "Sessions: client_id and seq",
        "a write retried with the same (client_id, seq), on any connection, applies once and answers as the first time";
    FOLLOWERS = "followers", "Requests and answers",
        "a follower answers a write with NotLeader (whose hint, if any, names the leader and its address) or serves it";
    PIPELINING = "pipelining", "Framing",
        "requests sent before the earlier answers arrive are all answered, each with its own id";
    DIGEST = "digest", "The digest request",
        "every node answers Digest with its own id; nodes at the same applied index report the same data";
    BAD_FRAMES = "bad-frames", "Bad input",
        "a bad frame gets its connection closed (or an answer), and the node stays up and keeps serving its other connections";
    PEER_ADDRESS = "peer-address", "Addresses",
        "each node dials its peers from its own --listen IP, so that a partition (a firewall rule on source and destination) cuts exactly one link";
    SIGTERM = "sigterm", "Stopping: SIGTERM and SIGKILL",
        "on SIGTERM the node exits within 5 s";
    RESTART = "restart", "Durability and restarts",
        "killed with SIGKILL and restarted on the same --data-dir, the cluster elects a leader again, no node's term goes back, and every acknowledged write is still there";
    LOGS = "logs", "What to log",
        "each node writes its log to stdout or stderr (advisory: the bench keeps it as nodes/n<i>.log)";
}

/// What a check found about one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds; what was checked.
    Pass(String),
    /// The rule is broken: what was sent and what came back (or did not).
    Fail(String),
    /// Not checked, because an earlier rule it depends on failed.
    Skip(String),
    /// An advisory rule that does not hold; not a failure.
    Warn(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass(_) => "ok",
            Verdict::Fail(_) => "FAIL",
            Verdict::Skip(_) => "skip",
            Verdict::Warn(_) => "warn",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Verdict::Pass(s) | Verdict::Fail(s) | Verdict::Skip(s) | Verdict::Warn(s) => s,
        }
    }

    /// A pass if `problems` is empty, else a failure listing them.
    pub fn from_problems(problems: Vec<String>, pass: impl Into<String>) -> Verdict {
        if problems.is_empty() {
            Verdict::Pass(pass.into())
        } else {
            Verdict::Fail(problems.join("\n"))
        }
    }
}

/// The findings so far, printed as they come so that a slow check shows where it is.
#[derive(Debug, Default)]
pub struct Findings {
    found: Vec<(&'static Rule, Verdict)>,
}

impl Findings {
    /// Records and prints one finding. A failure also prints the rule and where it is explained.
    pub fn add(&mut self, rule: &'static Rule, verdict: Verdict) {
        println!("{}", render(rule, &verdict));
        self.found.push((rule, verdict));
    }

    /// Skips every rule in `rules` for `why`.
    pub fn skip(&mut self, rules: &[&'static Rule], why: &str) {
        for rule in rules {
            self.add(rule, Verdict::Skip(why.to_string()));
        }
    }

    /// The ids of the rules that failed, in order.
    pub fn failed(&self) -> Vec<&'static str> {
        self.found
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Fail(_)))
            .map(|(rule, _)| rule.id)
            .collect()
    }

    pub fn verdict(&self, rule: &Rule) -> Option<&Verdict> {
        self.found
            .iter()
            .find(|(r, _)| r.id == rule.id)
            .map(|(_, v)| v)
    }

    pub fn passed(&self, rule: &Rule) -> bool {
        matches!(self.verdict(rule), Some(Verdict::Pass(_)))
    }
}

/// `FAIL  status        n1 (127.0.0.11:7000): ...` with continuation lines indented, and for
/// a failure the rule itself and its section of the contract.
pub fn render(rule: &Rule, verdict: &Verdict) -> String {
    let indent = " ".repeat(20);
    let mut lines = verdict.detail().lines();
    let mut out = format!(
        "{:<5} {:<13} {}",
        verdict.label(),
        rule.id,
        lines.next().unwrap_or("")
    );
    for line in lines {
        out.push_str(&format!("\n{indent}{line}"));
    }
    if let Verdict::Fail(_) = verdict {
        out.push_str(&format!(
            "\n{indent}rule: {} (docs/node-contract.md, \"{}\")",
            rule.says, rule.section
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique() {
        let mut ids: Vec<&str> = ALL.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
    }

    #[test]
    fn a_failure_names_the_rule_and_its_section() {
        let text = render(
            &STATUS,
            &Verdict::Fail("n1: no answer\nn2: no answer".into()),
        );
        assert!(
            text.starts_with("FAIL  status        n1: no answer\n"),
            "{text}"
        );
        assert!(
            text.contains("\n                    n2: no answer"),
            "{text}"
        );
        assert!(text.contains("\"The status request\""), "{text}");
        let pass = render(&STATUS, &Verdict::Pass("fine".into()));
        assert!(!pass.contains("rule:"), "{pass}");
    }
}
