//! The power cut: unsynced data first (files are found by their current paths), then the
//! unsynced directory changes, newest first.

use std::fs::{self, File};
use std::io;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::dirops::describe;
use crate::journal::{FileCut, Mode};
use crate::state::{remove_any, State, STASH};

/// What a power cut dropped, for the bench to record.
#[derive(Debug, Clone, Serialize)]
pub struct PowerCutReport {
    pub mode: Mode,
    /// Every file that had unsynced data, and what became of it.
    pub files: Vec<FileCut>,
    /// Bytes written since the files' last fsyncs (kept or not).
    pub bytes_unsynced: u64,
    /// Directory changes undone, newest first (`create a/b`, `rename a -> b`, ...).
    pub entries_undone: Vec<String>,
    /// Directory changes that could not be undone because a later change to the same entry
    /// was durable (the entry stays as that change left it).
    pub entries_skipped: Vec<String>,
}

fn seed(mode: Mode) -> u64 {
    match mode {
        Mode::All => 0,
        Mode::Torn(s) | Mode::Reorder(s) => s,
    }
}

impl State {
    pub(crate) fn power_cut(&mut self, mode: Mode) -> io::Result<PowerCutReport> {
        if !self.handles.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "{} file(s) still open in the mount: a power cut is for a dead node; kill \
                     the processes using the mount first",
                    self.handles.len()
                ),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed(mode));
        let mut report = PowerCutReport {
            mode,
            files: Vec::new(),
            bytes_unsynced: 0,
            entries_undone: Vec::new(),
            entries_skipped: Vec::new(),
        };
        for (ino, journal) in std::mem::take(&mut self.data) {
            let Ok(rel) = self.rel(ino) else { continue };
            let file = match File::options().read(true).write(true).open(self.full(&rel)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut cut = journal.cut(&file, mode, &mut rng)?;
            cut.path = rel.display().to_string();
            report.bytes_unsynced += cut.bytes_unsynced;
            report.files.push(cut);
        }
        for op in std::mem::take(&mut self.entries).into_iter().rev() {
            let what = describe(self, &op);
            if self.undo_entry(&op)? {
                report.entries_undone.push(what);
            } else {
                report.entries_skipped.push(what);
            }
        }
        // What is left in the stash was removed durably.
        let stash = self.full(std::path::Path::new(STASH));
        for entry in fs::read_dir(&stash)? {
            remove_any(&entry?.path())?;
        }
        self.inodes.reset();
        self.power_cuts += 1;
        Ok(report)
    }
}
