//! `riptide check FILE --report DIR`: the timeline a run gets, for any history the checker reads.
//!
//! JSONL is read again for the picture (so it shows fails, errors, times and nemesis windows);
//! the other formats are drawn from the checker's parsed ops, which have no times and no fails.
//! Either way ops are numbered as the checker numbers them (position among the file's events),
//! so the counterexample's ops are the ones highlighted.

use std::path::{Path, PathBuf};

use riptide_checker::{CheckReport, Format, History};
use riptide_report::RunInfo;
use riptide_store::history::HistoryFile;
use riptide_store::RunHistory;

/// Checks DIR before the history is read: it is a directory, or it can be created (its parent
/// exists). Nothing is created yet, so bad input leaves nothing behind.
pub fn usable_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(format!("--report {}: not a directory", dir.display()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "--report {}: cannot create it, {} is not a directory (create the parent first)",
            dir.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// Writes DIR/timeline.html (and the plots for a history with times); returns the page's path.
pub fn write(dir: &Path, history: &History, report: &CheckReport) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        std::fs::create_dir(dir)
            .map_err(|e| format!("--report {}: cannot create it: {e}", dir.display()))?;
    }
    let file = match history.format {
        Format::Jsonl => Some(
            HistoryFile::read(&history.path)
                .map_err(|e| format!("cannot read {} again: {e}", history.path.display()))?,
        ),
        _ => None,
    };
    // A line the checker read but the record reader did not would shift the numbering: then
    // draw what the checker read, as for the other formats.
    let from_file = file.as_ref().is_some_and(|f| f.unreadable_lines == 0);
    let (run, timed) = match &file {
        Some(file) if from_file => RunHistory::from_file_by_position(file),
        _ => (RunHistory::from_checker_history(history), false),
    };
    let mut notes = Vec::new();
    if !timed {
        notes.push(
            "This history has no times: the time axis is the history index \
             (event n of the file is drawn at n s, so durations count events).",
        );
    }
    if !from_file {
        notes.push(
            "Fail ops are not drawn (the checker drops them: they took no effect), nor nemesis \
             events; an info op runs to the end of the history.",
        );
    }
    let info = RunInfo {
        name: history
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
        workload: Some(format!("{} history", history.format.name())),
        note: (!notes.is_empty()).then(|| notes.join(" ")),
        ..RunInfo::default()
    };
    riptide_report::write_history_reports(dir, &run, &info, report, timed)
        .map_err(|e| format!("--report {}: {e:#}", dir.display()))
}
