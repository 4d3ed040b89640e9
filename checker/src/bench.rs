//! Timing a directory of histories, one file at a time, as Porcupine's test suite does.
//!
//! Each round parses and checks every file in turn (`load_history` + `check` with the file's
//! default model); after one untimed warm-up round, [`bench_dir`] runs `rounds` timed rounds and
//! reports the median time of each file and the median of the round totals. If the directory
//! has an `expected.tsv` (file, format, model, `linearizable`|`not-linearizable`), it lists the
//! files and each verdict is compared with it; otherwise every `*.jsonl`, `*.edn`, `*.log` and
//! `*.txt` below the directory is timed.
//!
//! Used by `riptide check --bench DIR` and `cargo bench -p riptide-checker`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::report::Verdict;
use crate::{check, default_model, load_history, CheckOptions, Format};

/// One file's timings.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// Relative to the benchmarked directory.
    pub file: PathBuf,
    pub verdict: Verdict,
    /// From `expected.tsv`, if there is one.
    pub expected: Option<Verdict>,
    /// Median of the timed rounds (parse + check).
    pub median: Duration,
}

/// The timings of a directory.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub dir: PathBuf,
    pub rounds: usize,
    pub rows: Vec<BenchRow>,
    /// Median over rounds of the time to do every file once.
    pub total_median: Duration,
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// The files to time, with their expected verdicts if known.
fn files(dir: &Path) -> Result<Vec<(PathBuf, Option<Verdict>)>> {
    let table = dir.join("expected.tsv");
    if table.is_file() {
        let text = std::fs::read_to_string(&table).map_err(|source| Error::Io {
            path: table.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if line.trim().is_empty() {
                continue;
            }
            let expected = match cols.last().copied() {
                Some("linearizable") => Verdict::Valid,
                Some("not-linearizable") => Verdict::Invalid,
                _ => {
                    return Err(Error::Parse {
                        column: None,
                        path: table.clone(),
                        line: i + 1,
                        expected: "FILE<tab>FORMAT<tab>MODEL<tab>linearizable|not-linearizable"
                            .into(),
                        found: crate::error::excerpt(line),
                    })
                }
            };
            out.push((PathBuf::from(cols[0]), Some(expected)));
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jsonl" | "edn" | "log" | "txt")
            ) {
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
                out.push((rel, None));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses and checks one file, returning its verdict.
fn run_one(path: &Path, opts: &CheckOptions) -> Result<Verdict> {
    // Each file's clock starts before it is read, as in `riptide check`.
    let opts = &CheckOptions {
        started: Some(Instant::now()),
        ..opts.clone()
    };
    let history = load_history(path, Format::Auto)?;
    let model = default_model(&history);
    Ok(check(&history, model, opts)?.verdict)
}

/// Times every history in `dir`: one warm-up round, then `rounds` timed rounds.
pub fn bench_dir(dir: &Path, rounds: usize, opts: &CheckOptions) -> Result<BenchReport> {
    let files = files(dir)?;
    let rounds = rounds.max(1);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); files.len()];
    let mut totals = Vec::new();
    let mut verdicts = vec![Verdict::Unknown; files.len()];
    for round in 0..=rounds {
        let mut total = Duration::ZERO;
        for (i, (file, _)) in files.iter().enumerate() {
            let t = Instant::now();
            verdicts[i] = run_one(&dir.join(file), opts)?;
            let dt = t.elapsed();
            if round > 0 {
                times[i].push(dt);
                total += dt;
            }
        }
        if round > 0 {
            totals.push(total);
        }
    }
    let rows = files
        .into_iter()
        .zip(times)
        .zip(verdicts)
        .map(|(((file, expected), times), verdict)| BenchRow {
            file,
            verdict,
            expected,
            median: median(times),
        })
        .collect();
    Ok(BenchReport {
        dir: dir.to_path_buf(),
        rounds,
        rows,
        total_median: median(totals),
    })
}

impl BenchReport {
    /// Files whose verdict differs from `expected.tsv`.
    pub fn mismatches(&self) -> Vec<&BenchRow> {
        self.rows
            .iter()
            .filter(|r| r.expected.is_some_and(|e| e != r.verdict))
            .collect()
    }

    /// A table of the slowest files and the total.
    pub fn render(&self, slowest: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} files, parse + check one at a time, median of {} rounds",
            self.dir.display(),
            self.rows.len(),
            self.rounds
        );
        let mut rows: Vec<&BenchRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.median.cmp(&a.median).then(a.file.cmp(&b.file)));
        for r in rows.iter().take(slowest) {
            let _ = writeln!(
                s,
                "  {:>9.3} ms  {:<8} {}",
                r.median.as_secs_f64() * 1e3,
                r.verdict.name(),
                r.file.display()
            );
        }
        let _ = writeln!(
            s,
            "  total {:.3} ms (median of round totals)",
            self.total_median.as_secs_f64() * 1e3
        );
        for r in self.mismatches() {
            let _ = writeln!(
                s,
                "  WRONG VERDICT: {} is {}, expected {}",
                r.file.display(),
                r.verdict.name(),
                r.expected.map_or("?", Verdict::name)
            );
        }
        s
    }
}
