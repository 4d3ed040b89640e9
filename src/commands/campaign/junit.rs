//! `--junit FILE`: the campaign as JUnit XML, so that CI systems show each run as a test.
//!
//! One `<testsuite>` per campaign, one `<testcase>` per run (named by its matrix cell and seed,
//! `time` in seconds). An invalid run is a `<failure>` whose message names the anomalies and
//! whose text lists the keys that could not be linearized, the replica comparison and the run
//! folder with its timeline; an unknown run is a `<failure type="unknown">`, a crashed run an
//! `<error>`. This is the subset of the format that Jenkins, GitLab and GitHub's test
//! reporters read.

use std::fmt::Write as _;
use std::path::Path;

use riptide_checker::Verdict;
use riptide_store::campaign::{CampaignFile, CampaignRun, RunOutcome};
use riptide_store::results::CheckSummary;
use riptide_store::Results;

/// The XML document for `campaign`; run folders are read from `results_dir` for the details.
pub fn render(campaign: &CampaignFile, results_dir: &Path) -> String {
    let t = &campaign.totals;
    let seconds: f64 = campaign.runs.iter().map(|r| r.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"riptide campaign\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{seconds:.3}\">",
        t.runs,
        t.invalid + t.unknown,
        t.crashed
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" timestamp=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{seconds:.3}\">",
        esc(&campaign.name),
        esc(&campaign.started_at),
        t.runs,
        t.invalid + t.unknown,
        t.crashed
    );
    for run in &campaign.runs {
        testcase(&mut x, campaign, run, results_dir);
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn testcase(x: &mut String, campaign: &CampaignFile, run: &CampaignRun, results_dir: &Path) {
    let cell = super::matrix::label(&campaign.asked.matrix, &run.cell);
    let name = if cell.is_empty() {
        format!("seed {}", run.seed)
    } else {
        format!("{cell} seed {}", run.seed)
    };
    let _ = write!(
        x,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        esc(&campaign.name),
        esc(&name),
        run.seconds
    );
    let folder = run.dir.as_deref().unwrap_or("(no run folder)");
    match run.verdict {
        RunOutcome::Valid => x.push_str("/>\n"),
        RunOutcome::Crashed => {
            let _ = write!(
                x,
                ">\n      <error type=\"crashed\" message=\"the run crashed before it was judged\">{}</error>\n    </testcase>\n",
                esc(&format!("run folder: {folder}"))
            );
        }
        RunOutcome::Invalid | RunOutcome::Unknown => {
            let (kind, message) = if run.verdict == RunOutcome::Invalid {
                ("invalid", format!("INVALID: {}", run.anomalies.join(", ")))
            } else {
                (
                    "unknown",
                    "UNKNOWN: the checker could not decide every key".to_string(),
                )
            };
            let details = details(run, results_dir);
            let _ = write!(
                x,
                ">\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                esc(&message),
                esc(&details)
            );
        }
    }
}

/// The text of a failure: the keys the checker could not linearize or decide, the replica
/// comparison, and where to look.
fn details(run: &CampaignRun, results_dir: &Path) -> String {
    let mut text = String::new();
    let Some(dir) = run.dir.as_deref() else {
        return text;
    };
    let folder = results_dir.join(dir);
    if let Ok(results) = Results::<CheckSummary>::load(&folder) {
        for verdict in [Verdict::Invalid, Verdict::Unknown] {
            let keys: Vec<&str> = results
                .checker
                .keys
                .iter()
                .filter(|(_, k)| k.verdict == verdict)
                .map(|(name, _)| name.as_str())
                .collect();
            if !keys.is_empty() {
                let _ = writeln!(text, "{} keys: {}", verdict.name(), keys.join(", "));
            }
        }
        if let Some(replicas) = &results.replicas {
            let _ = writeln!(text, "replicas: {}", replicas.note);
        }
    }
    let _ = writeln!(text, "run folder: {}", folder.display());
    let _ = writeln!(text, "timeline: {}", folder.join("timeline.html").display());
    text
}

/// XML-escapes text and attribute values; drops characters XML 1.0 cannot hold.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
