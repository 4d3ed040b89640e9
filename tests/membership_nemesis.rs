//! `riptide test --nemesis membership`: real nodes grown, shrunk and replaced through the
//! leader's admin requests while clients write, with kills and partitions overlapping; new
//! nodes take fresh ids, removed ones are killed and wiped, the clients follow, the planned
//! voters are back for the final reads, and the run stays valid. And `membership:stranded`: a
//! correct leader cut off with C_new's majority commits nothing, and `joint-one-majority` is
//! caught; `membership:disjoint`: a correct new leader refuses a change before it has committed
//! in its term, and `single-server-change-unsafe` is caught. Skipped (with a message) when not root, like every `riptide test` run.

mod common;

use std::process::Command;

use common::{json_lines, latest_run, riptide_bin, skip_without_root};
use serde_json::Value;

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[test]
fn membership_changes_under_kills_and_partitions_keep_the_run_valid_and_end_with_the_planned_voters(
) {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args(["test", "--nodes", "5", "--time-limit", "24"])
        .args([
            "--nemesis",
            "membership:grow,membership:shrink,membership:replace,kill,partition",
            "--nemesis-overlap",
        ])
        .args(["--nemesis-interval", "2", "--keep-data", "always"])
        .args(["--seed", "3", "--no-progress", "--results-dir"])
        .arg(results.path())
        .output()
        .expect("run riptide");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");

    let dir = latest_run(results.path());
    let history = json_lines(&dir.join("history.jsonl"));
    let changes: Vec<&Value> = history
        .iter()
        .filter(|op| op["process"] == "nemesis" && op["value"]["fault"] == "membership")
        .map(|op| &op["value"])
        .collect();
    let done: Vec<&&Value> = changes.iter().filter(|v| v["outcome"] == "done").collect();
    assert!(
        done.len() >= 2,
        "at least two changes went through: {changes:#?}"
    );
    let added: Vec<u64> = changes.iter().filter_map(|v| v["added"].as_u64()).collect();
    assert!(
        added.iter().all(|&id| id > 5),
        "new nodes take fresh ids: {added:?}"
    );
    let wiped: Vec<u64> = changes.iter().flat_map(|v| ids(&v["wiped"])).collect();
    for id in &wiped {
        assert!(
            !dir.join("nodes").join(format!("n{id}")).exists(),
            "node {id} was wiped, its data dir must be gone"
        );
        assert!(dir.join("nodes").join(format!("n{id}.log")).is_file());
    }
    let last = changes.last().expect("membership events");
    let voters = ids(&last["voters"]);
    assert_eq!(voters.len(), 5, "the planned voters are back: {last}");

    // The clients followed the members: writes kept being acknowledged after the first wipe.
    let first_wipe = history
        .iter()
        .find(|op| op["process"] == "nemesis" && !ids(&op["value"]["wiped"]).is_empty())
        .and_then(|op| op["time"].as_u64())
        .expect("a node was wiped");
    let writes_after = history
        .iter()
        .filter(|op| op["type"] == "ok" && op["f"] == "write")
        .filter(|op| op["time"].as_u64().is_some_and(|t| t > first_wipe))
        .count();
    assert!(
        writes_after > 50,
        "{writes_after} writes after the first wipe"
    );

    // Every node of the final configuration is compared as a replica, and they agree.
    let replicas: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("replicas.json")).unwrap()).unwrap();
    assert_eq!(replicas["outcome"], "agree", "{replicas:#}");
    let compared: Vec<u64> = replicas["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_u64())
        .collect();
    assert_eq!(
        compared, voters,
        "the replicas compared are the final voters"
    );
    let results_json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results_json["verdict"], "valid", "{results_json:#}");
    let timeline = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    assert!(timeline.contains("membership"), "the timeline shows them");
}

/// One 5-node run of `--nemesis membership:CHANGE` (a short interval, so several of them); its
/// exit code, stdout and the values of that change's starts.
fn change_run(
    change: &str,
    interval: &str,
    bug: Option<&str>,
) -> (Option<i32>, String, Vec<Value>) {
    let results = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(riptide_bin());
    cmd.args(["test", "--nodes", "5", "--time-limit", "16"])
        .args(["--nemesis", &format!("membership:{change}")])
        .args(["--nemesis-interval", interval])
        .args(["--seed", "1", "--no-progress", "--results-dir"])
        .arg(results.path());
    if let Some(bug) = bug {
        cmd.args(["--unsafe-bug", bug]);
    }
    let out = cmd.output().expect("run riptide");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let history = json_lines(&latest_run(results.path()).join("history.jsonl"));
    let starts = history
        .into_iter()
        .filter(|op| op["process"] == "nemesis" && op["f"] == "start")
        .map(|op| op["value"].clone())
        .filter(|v| v["change"] == change)
        .collect();
    (out.status.code(), stdout, starts)
}

fn stranded_run(bug: Option<&str>) -> (Option<i32>, String, Vec<Value>) {
    change_run("stranded", "3", bug)
}

#[test]
fn a_leader_stranded_with_c_news_majority_commits_only_with_the_bug_and_the_bug_is_caught() {
    if skip_without_root() {
        return;
    }
    // The correct leader cannot commit C_old,new on its side: every stranding ends without
    // the change, and the run is valid.
    let (code, stdout, starts) = stranded_run(None);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");
    assert!(!starts.is_empty(), "{stdout}");
    for start in &starts {
        assert_ne!(start["outcome"], "done", "{start}");
        assert_eq!(start["groups"].as_array().map(Vec::len), Some(2), "{start}");
        assert!(
            start["note"].as_str().unwrap().contains("stranded"),
            "{start}"
        );
    }
    // A leader that counts only C_new's majority commits it there and keeps leading; the far
    // side elects another leader: the checker sees the split.
    let (code, stdout, starts) = stranded_run(Some("joint-one-majority"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("verdict   INVALID"), "{stdout}");
    assert!(
        starts.iter().any(|s| s["outcome"] == "done"),
        "a stranded change committed: {starts:#?}"
    );
}

#[test]
fn two_disjoint_single_server_changes_commit_only_with_the_2015_bug_and_it_is_caught() {
    if skip_without_root() {
        return;
    }
    // The correct new leader has not committed in its term: it refuses to remove the old
    // leader, saying so, and the run is valid.
    let (code, stdout, starts) = change_run("disjoint", "5", None);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");
    assert!(!starts.is_empty(), "{stdout}");
    for start in &starts {
        assert_ne!(start["outcome"], "done", "{start}");
        let note = start["note"].as_str().unwrap();
        assert!(note.contains("removed and wiped: 4 voters"), "{start}");
        assert!(
            note.contains("moved to"),
            "the second cut was made: {start}"
        );
        let reason = start["reason"].as_str().unwrap();
        assert!(
            reason.contains("has not yet committed an entry of its term"),
            "{start}"
        );
    }
    // A leader that changes the configuration before committing in its term commits C − L1
    // with half of the voters, and the old leader's side elects it again under C + N: two
    // leaders, and the checker sees them.
    let (code, stdout, starts) = change_run("disjoint", "5", Some("single-server-change-unsafe"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("verdict   INVALID"), "{stdout}");
    assert!(
        starts.iter().any(|s| s["outcome"] == "done"),
        "a disjoint change committed: {starts:#?}"
    );
}
