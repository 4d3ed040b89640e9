//! `results/index.html`: every stored run, newest first, rewritten after every run (and by
//! `riptide analyze` and `riptide serve`).
//!
//! A run is a folder `results/<test-name>/<timestamp>/` with a `test.json` or a `history.jsonl`.
//! Each row comes from that folder's `test.json` (name, start, seed, nodes, nemesis, status) and
//! `results.json` (verdict, op count, duration, faults); a run without a verdict (crashed, still
//! running) is listed with its status instead. Links are relative, so the page works both from
//! disk and through `riptide serve`.

use std::path::{Path, PathBuf};

use riptide_store::Results;

use super::{html_escape as esc, RunInfo};

/// One run, as the index shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Relative to the results dir: `<name>/<timestamp>`.
    pub path: String,
    pub info: RunInfo,
    /// `valid`, `invalid`, `unknown`, or `None` without a results.json.
    pub verdict: Option<String>,
    pub ops: Option<u64>,
    pub duration_s: Option<f64>,
    /// e.g. `2 partition, 1 kill`.
    pub faults: Option<String>,
    pub files: Vec<&'static str>,
}

/// The files a run folder may have, in the order the index links them.
const FILES: [&str; 8] = [
    "timeline.html",
    "latency.svg",
    "rate.svg",
    "results.json",
    "history.jsonl",
    "test.json",
    "riptide.log",
    "nodes",
];

/// Every run folder under `results`, newest first.
pub fn scan(results: &Path) -> std::io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for test in std::fs::read_dir(results)? {
        let test = test?;
        // `latest` is a symlink to a run already listed; hidden entries are temp files.
        if !test.file_type()?.is_dir() || test.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(runs) = std::fs::read_dir(test.path()) else {
            continue;
        };
        for run in runs.flatten() {
            let dir: PathBuf = run.path();
            if !run.file_type().is_ok_and(|t| t.is_dir())
                || !(dir.join("test.json").is_file() || dir.join("history.jsonl").is_file())
            {
                continue;
            }
            rows.push(row(results, &dir));
        }
    }
    // Timestamps sort as text; the folder name breaks ties (and orders runs without test.json).
    rows.sort_by(|a, b| {
        let key = |r: &Row| {
            (
                r.info.started_at.clone().unwrap_or_default(),
                r.path.rsplit('/').next().unwrap_or("").to_string(),
            )
        };
        key(b).cmp(&key(a))
    });
    Ok(rows)
}

fn row(results: &Path, dir: &Path) -> Row {
    let path = dir
        .strip_prefix(results)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let mut row = Row {
        path,
        info: RunInfo::load(dir),
        files: FILES.into_iter().filter(|f| dir.join(f).exists()).collect(),
        ..Row::default()
    };
    if let Ok(r) = Results::load(dir) {
        row.verdict = Some(r.verdict.name().to_string());
        let s = &r.summary;
        row.ops = Some(s.invokes);
        row.duration_s = Some(s.duration_s);
        row.faults = Some(
            s.faults
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    row
}

/// Percent-encodes a relative URL path (keeps `/` and unreserved characters).
pub fn url_path(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `20261123T233447` as `2026-11-23 23:34:47 UTC`.
fn pretty_time(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() >= 15 && b[8] == b'T' && stamp.is_ascii() {
        format!(
            "{}-{}-{} {}:{}:{} UTC",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    } else {
        stamp.to_string()
    }
}

/// The page: the campaigns (`campaigns`, the HTML of [`super::campaign::index_section`]) and
/// the runs.
pub fn render(rows: &[Row], campaigns: &str) -> String {
    let count = |v: &str| {
        rows.iter()
            .filter(|r| r.verdict.as_deref() == Some(v))
            .count()
    };
    let mut h = String::from(HEAD);
    h.push_str(&format!(
        "<h1>riptide runs</h1>\n<p id=\"totals\">{} runs: <span class=\"t-valid\">{} valid</span>, \
         <span class=\"t-invalid\">{} invalid</span>, <span class=\"t-unknown\">{} unknown</span>, \
         {} without a verdict. Newest first.</p>\n",
        rows.len(),
        count("valid"),
        count("invalid"),
        count("unknown"),
        rows.iter().filter(|r| r.verdict.is_none()).count()
    ));
    h.push_str(campaigns);
    h.push_str(
        "<table id=\"runs\">\n<thead><tr><th>test</th><th>time</th><th>verdict</th><th>nodes</th>\
         <th>faults</th><th>seed</th><th>ops</th><th>duration</th><th>files</th></tr></thead>\n<tbody>\n",
    );
    for r in rows {
        h.push_str(&row_html(r));
    }
    h.push_str("</tbody>\n</table>\n");
    if rows.is_empty() {
        h.push_str("<p>No runs yet: <code>riptide test</code> stores one here.</p>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// One run's row of the table.
fn row_html(r: &Row) -> String {
    let i = &r.info;
    let (verdict, class) = match (&r.verdict, i.status.as_deref()) {
        (Some(v), _) => (v.to_uppercase(), format!("v-{v}")),
        (None, Some(s)) => (s.to_string(), "v-none".to_string()),
        (None, None) => ("no verdict".to_string(), "v-none".to_string()),
    };
    let status = match i.status.as_deref() {
        Some("complete") | None => String::new(),
        Some(s) if r.verdict.is_some() => format!(" <span class=\"muted\">({})</span>", esc(s)),
        Some(_) => String::new(),
    };
    let faults = match (&r.faults, &i.nemesis) {
        (Some(f), _) if !f.is_empty() => esc(f),
        (_, Some(n)) if n != "none" => {
            format!("{} <span class=\"muted\">(none recorded)</span>", esc(n))
        }
        _ => "<span class=\"muted\">none</span>".to_string(),
    };
    let bugs = if i.unsafe_bugs.is_empty() {
        String::new()
    } else {
        format!(
            "<br><span class=\"bug\">unsafe bug: {}</span>",
            esc(&i.unsafe_bugs.join(", "))
        )
    };
    let files: Vec<String> = r.files.iter().map(|f| file_link(&r.path, f)).collect();
    let opt = |v: Option<String>| {
        v.map_or_else(|| "<span class=\"muted\">–</span>".to_string(), |s| esc(&s))
    };
    format!(
        "<tr class=\"run\" data-verdict=\"{}\"><td>{}</td><td>{}</td><td><span class=\"verdict {class}\">{}</span>{status}</td>\
         <td>{}</td><td>{faults}{bugs}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"files\">{}</td></tr>\n",
        esc(r.verdict.as_deref().unwrap_or("none")),
        opt(i.name.clone().or_else(|| r.path.split('/').next().map(str::to_string))),
        opt(i.started_at.as_deref().map(pretty_time)),
        esc(&verdict),
        opt(i.nodes.map(|n| n.to_string())),
        opt(i.seed.clone()),
        opt(r.ops.map(|n| n.to_string())),
        opt(r.duration_s.map(|d| format!("{d:.1} s"))),
        files.join(" "),
    )
}

/// A link to one file of the run folder at `run_path`.
fn file_link(run_path: &str, file: &str) -> String {
    let href = url_path(&format!("{run_path}/{file}"));
    let (label, extra) = match file {
        "history.jsonl" => ("history", " download"),
        "timeline.html" => ("timeline", ""),
        "results.json" => ("results", ""),
        "latency.svg" => ("latency", ""),
        "rate.svg" => ("rate", ""),
        "test.json" => ("test.json", ""),
        "riptide.log" => ("log", ""),
        _ => ("node logs", ""),
    };
    let href = if file == "nodes" { href + "/" } else { href };
    format!("<a href=\"{href}\"{extra}>{label}</a>")
}

/// Rewrites `results/index.html`.
pub fn write_index(results: &Path) -> anyhow::Result<PathBuf> {
    let rows = scan(results)?;
    let path = results.join("index.html");
    let campaigns = zoo_section(results) + &super::campaign::index_section(results);
    super::write_atomic(&path, render(&rows, &campaigns).as_bytes())?;
    Ok(path)
}

/// The tables of `riptide zoo` (`results/zoo/STAMP/zoo.md`), newest first; empty if none.
fn zoo_section(results: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(results.join("zoo")) else {
        return String::new();
    };
    let mut stamps: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("zoo.md").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if stamps.is_empty() {
        return String::new();
    }
    stamps.sort_by(|a, b| b.cmp(a));
    let links: Vec<String> = stamps
        .iter()
        .map(|s| {
            let s = esc(s);
            format!("<li><a href=\"zoo/{s}/zoo.md\">{s}</a> (<a href=\"zoo/{s}/zoo.json\">json</a>)</li>")
        })
        .collect();
    format!(
        "<h2>Bug zoo</h2>\n<ul id=\"zoo\">\n{}\n</ul>\n",
        links.join("\n")
    )
}

const HEAD: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>riptide runs</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px; color: #222; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
  th { font-weight: 600; border-bottom: 2px solid #ccc; }
  td:nth-child(6), td:nth-child(7), td:nth-child(8) { font-variant-numeric: tabular-nums; }
  .verdict { display: inline-block; padding: 0 7px; border-radius: 3px; color: #fff; font-weight: 700; font-size: 12px; }
  .verdict.v-valid { background: #2e7d32; } .verdict.v-invalid { background: #c62828; }
  .verdict.v-unknown { background: #757575; } .verdict.v-none { background: #b0b0b0; }
  .t-valid { color: #2e7d32; } .t-invalid { color: #c62828; } .t-unknown { color: #757575; }
  .files a { margin-right: 8px; }
  .muted { color: #888; }
  .bug { color: #c62828; font-size: 12px; }
</style>
</head>
<body>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(results: &Path, name: &str, stamp: &str, verdict: Option<&str>) {
        let dir = results.join(name).join(stamp);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("test.json"),
            format!(
                r#"{{"test":{{"name":"{name}","nodes":3,"seed":18446744073709551615,"nemesis":"kill","unsafe_bugs":[]}},"started_at":"{stamp}","status":"complete"}}"#
            ),
        )
        .unwrap();
        if let Some(v) = verdict {
            std::fs::write(
                dir.join("results.json"),
                format!(r#"{{"verdict":"{v}","summary":{{"invokes":42,"duration_s":9.5,"faults":{{"kill":2}}}}}}"#),
            )
            .unwrap();
        }
    }

    #[test]
    fn the_index_lists_runs_newest_first_with_their_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), "riptide", "20261123T100000", Some("valid"));
        run(dir.path(), "riptide", "20261123T120000", Some("invalid"));
        run(dir.path(), "other <b>", "20261123T110000", None);
        std::os::unix::fs::symlink("riptide/20261123T120000", dir.path().join("latest")).unwrap();
        let rows = scan(dir.path()).unwrap();
        let order: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            order,
            [
                "riptide/20261123T120000",
                "other <b>/20261123T110000",
                "riptide/20261123T100000"
            ]
        );
        assert_eq!(rows[0].info.seed.as_deref(), Some("18446744073709551615"));
        let page = render(&rows, "");
        assert!(page.contains("3 runs: <span class=\"t-valid\">1 valid</span>"));
        assert!(page.contains("<span class=\"verdict v-invalid\">INVALID</span>"));
        assert!(page.contains("2 kill"));
        assert!(page.contains("other &lt;b&gt;"), "names are escaped");
        assert!(page.contains("href=\"other%20%3Cb%3E/20261123T110000/test.json\""));
        assert!(!page.contains("<b>/"), "no raw markup from a name");
        assert!(page.find("20261123T120000").unwrap() < page.find("20261123T100000").unwrap());
    }
}
