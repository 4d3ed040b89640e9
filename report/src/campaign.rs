//! `campaign.html`: a stored campaign as a table, one row per run, with links to each run's
//! timeline; and the campaigns section of `results/index.html`.
//!
//! The page sits in `results/campaigns/<name>/<stamp>/`, three levels below the results dir,
//! and links runs relative to it, so it works from disk and through `riptide serve`.

use std::path::Path;

use riptide_store::campaign::{list_campaigns, CampaignFile, RunOutcome};

use super::html_escape as esc;

/// Writes `dir/campaign.html` for `file`.
pub fn write_campaign_page(dir: &Path, results: &Path, file: &CampaignFile) -> anyhow::Result<()> {
    let up = relative_up(dir, results);
    super::write_atomic(&dir.join("campaign.html"), render(file, &up).as_bytes())?;
    Ok(())
}

/// `../../../` from a campaign folder back to the results dir.
fn relative_up(dir: &Path, results: &Path) -> String {
    let depth = dir
        .strip_prefix(results)
        .map(|p| p.components().count())
        .unwrap_or(3);
    "../".repeat(depth)
}

/// The page; `up` leads from the page to the results dir.
pub fn render(file: &CampaignFile, up: &str) -> String {
    let t = &file.totals;
    let mut h = String::from(HEAD);
    h.push_str(&format!(
        "<h1>campaign {} · {}</h1>\n<p id=\"totals\">{} runs ({}): <span class=\"t-valid\">{} valid</span>, \
         <span class=\"t-invalid\">{} invalid</span>, {} unknown, {} crashed. Node: {}.</p>\n",
        esc(&file.name),
        esc(&file.started_at),
        t.runs,
        esc(&format!("{:?}", file.status).to_lowercase()),
        t.valid,
        t.invalid,
        t.unknown,
        t.crashed,
        esc(&node(file)),
    ));
    h.push_str(&format!(
        "<p class=\"muted\">riptide test {}</p>\n",
        esc(&file.asked.test_args.join(" "))
    ));
    h.push_str("<table id=\"runs\">\n<thead><tr><th>#</th><th>cell</th><th>seed</th><th>verdict</th>\
        <th>anomalies</th><th>ok/s</th><th>p50 ms</th><th>p99 ms</th><th>faults</th><th>run</th></tr></thead>\n<tbody>\n");
    for (i, run) in file.runs.iter().enumerate() {
        let cell: Vec<String> = run.cell.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let faults: Vec<String> = run.faults.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let link = run.dir.as_deref().map_or("-".to_string(), |d| {
            format!("<a href=\"{up}{}/timeline.html\">{}</a>", esc(d), esc(d))
        });
        let class = match run.verdict {
            RunOutcome::Valid => "v-valid",
            RunOutcome::Invalid => "v-invalid",
            _ => "v-unknown",
        };
        h.push_str(&format!(
            "<tr class=\"run\" data-verdict=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td><span class=\"verdict {class}\">{}</span></td>\
             <td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{link}</td></tr>\n",
            run.verdict.name(),
            i + 1,
            esc(&cell.join(" ")),
            run.seed,
            run.verdict.name().to_uppercase(),
            esc(&run.anomalies.join(", ")),
            run.ok_per_s,
            run.p50_ms,
            run.p99_ms,
            esc(&faults.join(", ")),
        ));
    }
    h.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    h
}

fn node(file: &CampaignFile) -> String {
    let n = &file.node;
    match (&n.git_commit, n.git_dirty) {
        (Some(c), Some(true)) => format!(
            "{} (dirty), crc32 {}",
            &c[..c.len().min(10)],
            n.binary_crc32
        ),
        (Some(c), _) => format!("{}, crc32 {}", &c[..c.len().min(10)], n.binary_crc32),
        (None, _) => format!("crc32 {}", n.binary_crc32),
    }
}

/// The index's campaigns table (empty when there are none), newest first.
pub fn index_section(results: &Path) -> String {
    let mut dirs = list_campaigns(results);
    dirs.reverse();
    let mut rows = String::new();
    for dir in &dirs {
        let Ok(file) = CampaignFile::load(dir) else {
            continue;
        };
        let rel = dir
            .strip_prefix(results)
            .unwrap_or(dir)
            .display()
            .to_string();
        let t = &file.totals;
        rows.push_str(&format!(
            "<tr class=\"campaign\"><td><a href=\"{}/campaign.html\">{}</a></td><td>{}</td><td>{}</td>\
             <td>{} runs: {} valid, <span class=\"t-invalid\">{} invalid</span>, {} unknown, {} crashed</td></tr>\n",
            esc(&rel),
            esc(&file.name),
            esc(&file.started_at),
            esc(&format!("{:?}", file.status).to_lowercase()),
            t.runs,
            t.valid,
            t.invalid,
            t.unknown,
            t.crashed
        ));
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<h2>Campaigns</h2>\n<table id=\"campaigns\">\n<thead><tr><th>campaign</th><th>time</th><th>status</th>\
         <th>runs</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n<h2>Runs</h2>\n"
    )
}

const HEAD: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>riptide campaign</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px; color: #222; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
  th { font-weight: 600; border-bottom: 2px solid #ccc; }
  .verdict { display: inline-block; padding: 0 7px; border-radius: 3px; color: #fff; font-weight: 700; font-size: 12px; }
  .verdict.v-valid { background: #2e7d32; } .verdict.v-invalid { background: #c62828; } .verdict.v-unknown { background: #757575; }
  .t-valid { color: #2e7d32; } .t-invalid { color: #c62828; }
  .muted { color: #888; }
</style>
</head>
<body>
"#;
