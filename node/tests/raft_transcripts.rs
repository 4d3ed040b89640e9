//! Transcript tests of the pure Raft core: one script per behaviour in `transcripts/`, named after
//! it, each run as a test of the same name. The script language and the trace are described in
//! `transcript/mod.rs` and `transcripts/README.md`.
//!
//! `cargo test --release -p riptide-node --test raft_transcripts` checks every script;
//! `RIPTIDE_REGENERATE=1 cargo test …` rewrites their expected outputs (assertions still apply).

mod transcript;

use std::path::{Path, PathBuf};

use transcript::{run_file, Mode};

fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts")
}

fn run(name: &str) {
    let path = transcripts_dir().join(format!("{name}.txt"));
    if let Err(report) = run_file(&path, Mode::from_env()) {
        panic!("transcript {name} failed:\n\n{report}\n");
    }
}

/// One test per script file, named after it (and so after the behaviour it shows).
macro_rules! transcripts {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { run(stringify!($name)); } )*
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

transcripts! {
    election_a_candidate_with_a_majority_becomes_leader,
    election_a_vote_survives_a_restart,
    split_vote_then_a_later_term_elects_one_leader,
    candidate_with_a_stale_log_loses,
    log_conflict_repair_replaces_the_divergent_suffix,
    figure_8_a_prior_term_entry_is_not_committed_by_counting,
    stale_term_message_is_dropped_and_the_stale_leader_steps_down,
    read_index_waits_for_the_own_term_commit,
    read_index_on_a_deposed_leader_never_answers,
    prevote_a_returning_node_does_not_disrupt_the_leader,
    a_restarted_follower_catches_up,
    a_follower_that_lost_acknowledged_entries_is_caught_up_by_the_same_leader,
    a_stale_reordered_reject_below_the_match_is_ignored,
    malformed_messages_from_a_peer_are_dropped,
    a_follower_refuses_proposals_and_reads_naming_the_leader,
    a_leader_in_a_minority_cannot_commit_and_its_entries_are_replaced,
    snapshot_a_lagging_follower_catches_up_by_install_snapshot,
    snapshot_a_stale_snapshot_is_refused,
    snapshot_stale_append_answers_do_not_restart_a_transfer,
    snapshot_chunks_duplicated_out_of_order_or_lost_still_install_once,
    snapshot_a_corrupted_image_is_refused_and_sent_again,
    snapshot_a_restart_loads_the_snapshot_and_replays_the_log_after_it,
    snapshot_a_follower_within_the_kept_tail_catches_up_from_the_log,
    snapshot_from_a_stale_term_is_refused_and_the_stale_leader_steps_down,
    snapshot_a_follower_that_crashes_mid_transfer_starts_over,
    a_follower_whose_committed_entries_are_replaced_stops_applying,
    zoo_commit_prior_term_a_counted_entry_is_lost,
    zoo_forget_vote_a_restarted_voter_votes_twice,
    zoo_read_index_early_a_new_leader_reads_below_a_committed_write,
    zoo_truncate_on_match_a_late_append_erases_a_committed_entry,
    zoo_commit_past_match_a_follower_commits_its_stale_suffix,
    zoo_quorum_off_by_one_a_lone_leader_commits,
    zoo_fixed_election_timeout_split_votes_repeat,
    zoo_lease_read_unsafe_a_deposed_leader_reads_stale,
    zoo_lease_read_unsafe_a_paused_leader_wakes_inside_its_lease,
}

/// A script nobody listed would never run: every `.txt` in the directory must have its test.
#[test]
fn every_transcript_file_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(transcripts_dir())
        .expect("the transcripts directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "add new scripts to transcripts! {{ … }}");
}

// ---- the harness itself ---------------------------------------------------------------------------

/// A script whose expectations are right, used to break them one at a time.
const GOOD: &str = "\
# a two-step election
cluster 3 prevote=false checkquorum=false
----
n1 follower term=0 vote=none leader=none commit=0 applied=0 last=0@0
n2 follower term=0 vote=none leader=none commit=0 applied=0 last=0@0
n3 follower term=0 vote=none leader=none commit=0 applied=0 last=0@0

campaign 1
----
n1 role=candidate term=1 vote=1
n1->n2 RequestVote term=1 last=0@0
n1->n3 RequestVote term=1 last=0@0

assert role 1 = candidate
assert in-flight to=2 = 1
";

fn script_in_tempdir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("behaviour.txt");
    std::fs::write(&path, text).expect("write the script");
    (dir, path)
}

#[test]
fn harness_accepts_a_correct_script() {
    let (_dir, path) = script_in_tempdir(GOOD);
    run_file(&path, Mode::Check).expect("the script is right");
}

#[test]
fn harness_reports_a_wrong_expected_output_with_file_line_and_diff() {
    let wrong = GOOD.replace("n1->n3 RequestVote term=1", "n1->n3 RequestVote term=7");
    let (_dir, path) = script_in_tempdir(&wrong);
    let report = run_file(&path, Mode::Check).expect_err("the output is wrong");
    let at = format!("{}:8: `campaign 1`: output differs", path.display());
    assert!(report.contains(&at), "names file and line: {report}");
    assert!(
        report.contains("- n1->n3 RequestVote term=7 last=0@0"),
        "{report}"
    );
    assert!(
        report.contains("+ n1->n3 RequestVote term=1 last=0@0"),
        "{report}"
    );
    assert!(
        report.contains("  n1->n2 RequestVote term=1 last=0@0"),
        "{report}"
    );
}

#[test]
fn harness_reports_a_failing_assertion_even_when_regenerating() {
    let wrong = GOOD.replace("assert role 1 = candidate", "assert role 1 = leader");
    let (_dir, path) = script_in_tempdir(&wrong);
    for mode in [Mode::Check, Mode::Regenerate] {
        let report = run_file(&path, mode).expect_err("the assertion is wrong");
        let at = format!("{}:14: `assert role 1 = leader`", path.display());
        assert!(
            report.contains(&at),
            "{mode:?} names file and line: {report}"
        );
        assert!(
            report.contains("role of 1 is candidate, expected = leader"),
            "{report}"
        );
    }
}

#[test]
fn harness_reports_a_missing_output_block_and_a_script_error() {
    let (_dir, path) = script_in_tempdir("cluster 1\n");
    let report = run_file(&path, Mode::Check).expect_err("no block");
    assert!(
        report.contains(":1: `cluster 1`: no expected output"),
        "{report}"
    );

    let (_dir, path) = script_in_tempdir("cluster 3\n----\nok\n\nfly 2\n----\nok\n");
    let report = run_file(&path, Mode::Check).expect_err("no such command");
    assert!(
        report.contains(":5: `fly 2`: script error: unknown command fly"),
        "{report}"
    );
}

#[test]
fn regenerating_rewrites_only_the_output_blocks() {
    let stale = GOOD
        .replace("n1->n3 RequestVote term=1", "n1->n3 RequestVote term=7")
        .replace("n1 role=candidate term=1 vote=1\n", "");
    let (_dir, path) = script_in_tempdir(&stale);
    run_file(&path, Mode::Regenerate).expect("assertions hold");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), GOOD);
    run_file(&path, Mode::Check).expect("the regenerated script checks");
}

#[test]
fn an_injected_message_is_printed_as_it_was_written() {
    let message =
        "n1->n2 AppendEntries term=3 prev=2@1 commit=2 round=4 entries=[3@2 noop, 4@3 put k v]";
    let parsed = transcript::format::parse_message(message).expect("parses");
    assert_eq!(transcript::format::message(&parsed), message);
    let reject = "n3->n1 AppendEntriesResponse term=2 reject prev=7 conflict=4@2 round=0";
    let parsed = transcript::format::parse_message(reject).expect("parses");
    assert_eq!(transcript::format::message(&parsed), reject);
}

#[test]
fn snapshot_messages_print_and_parse_back_to_the_same_message() {
    use riptide_node::raft::{Body, Message, SnapshotResult};
    use riptide_node::types::SnapshotMeta;
    use transcript::format::{message, parse_message};
    let chunk = Message {
        from: 1,
        to: 3,
        term: 2,
        body: Body::InstallSnapshot {
            meta: SnapshotMeta {
                last_index: 8,
                last_term: 1,
                voters: vec![1, 2, 3],
                learners: Vec::new(),
                outgoing: Vec::new(),
                addresses: Default::default(),
            },
            offset: 16,
            data: vec![0x00, 0x31, 0x0a, 0xff],
            total_len: 57,
            checksum: 0x0012_abcd,
            read_round: 4,
        },
    };
    let text = message(&chunk);
    assert_eq!(
        text,
        "n1->n3 InstallSnapshot term=2 snap=8@1 voters=1,2,3 offset=16 total=57 \
         crc=0x0012abcd round=4 data=0x00310aff"
    );
    assert_eq!(parse_message(&text), Ok(chunk));
    for result in [
        SnapshotResult::Continue { next_offset: 32 },
        SnapshotResult::Done { match_index: 9 },
    ] {
        let answer = Message {
            from: 3,
            to: 1,
            term: 2,
            body: Body::InstallSnapshotResponse {
                snapshot_index: 8,
                result,
                read_round: 4,
            },
        };
        let text = message(&answer);
        assert_eq!(parse_message(&text), Ok(answer), "{text}");
    }
    let done = "n3->n1 InstallSnapshotResponse term=2 snap=8 done match=9 round=4";
    assert_eq!(message(&parse_message(done).unwrap()), done);
    let bad =
        "n1->n3 InstallSnapshot term=2 snap=8@1 voters=1 offset=0 total=1 crc=12 round=0 data=0x00";
    assert!(parse_message(bad).is_err(), "a crc without 0x is refused");
}

/// `OP` negated: the assertion that must fail wherever `OP` holds.
fn negated(op: &str) -> Option<&'static str> {
    Some(match op {
        "=" => "!=",
        "!=" => "=",
        "<" => ">=",
        ">=" => "<",
        ">" => "<=",
        "<=" => ">",
        _ => return None,
    })
}

/// Every assertion of every script can fail: with its operator negated, the harness reports that
/// very line. (`assert safety` has no operator and is left out.)
#[test]
fn every_assertion_in_the_transcripts_can_fail() {
    let mut checked = 0;
    for name in LISTED {
        let text = std::fs::read_to_string(transcripts_dir().join(format!("{name}.txt"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (k, line) in lines.iter().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| negated(w).is_some()) else {
                continue;
            };
            if words[0] != "assert" {
                continue;
            }
            let mut flipped = words.clone();
            flipped[at] = negated(words[at]).unwrap();
            let flipped = flipped.join(" ");
            let mut mutant = lines.clone();
            mutant[k] = &flipped;
            let (_dir, path) = script_in_tempdir(&(mutant.join("\n") + "\n"));
            let report = run_file(&path, Mode::Check).expect_err(&flipped);
            let at = format!(":{}: `{flipped}`: assertion failed", k + 1);
            assert!(report.contains(&at), "{name}: {flipped}:\n{report}");
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} assertions found");
}
