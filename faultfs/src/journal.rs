//! The undo journal of one file's data since its last fsync, and the three ways a power cut
//! treats it.
//!
//! Writes go to the backing file at once. Before a page (4 KiB) that the last fsync left is
//! changed for the first time, its synced bytes are saved; the synced length is saved too. So
//! the synced image can always be rebuilt: write the saved pages back, cut to the synced length.
//! Every write and truncate since the fsync is also kept, in order, with its data, so that a
//! prefix of them can be replayed (`torn`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The unit of `reorder`: the page a disk or a page cache writes back as one.
pub const PAGE: u64 = 4096;

/// One change to a file's data since its last fsync, kept to be replayed.
enum Op {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

pub(crate) struct FileJournal {
    synced_len: u64,
    /// Page index → the synced bytes of that page (shorter than a page at the synced end).
    old_pages: BTreeMap<u64, Vec<u8>>,
    ops: Vec<Op>,
}

/// What a power cut did to one file's unsynced data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileCut {
    /// The file's path in the mount, as it was at the cut.
    pub path: String,
    pub synced_len: u64,
    pub len_before: u64,
    pub len_after: u64,
    /// Unsynced writes and truncates, and how many of them were kept (`torn`).
    pub ops: usize,
    pub ops_kept: usize,
    /// Pages changed since the fsync, and how many kept their new contents (`reorder`).
    pub pages: usize,
    pub pages_kept: usize,
    /// Bytes written since the fsync (kept or not).
    pub bytes_unsynced: u64,
}

/// How a power cut treats unsynced data; see the crate docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode", content = "seed")]
pub enum Mode {
    All,
    Torn(u64),
    Reorder(u64),
}

impl FileJournal {
    /// A journal for a file whose synced length is `synced_len` (its length now).
    pub(crate) fn new(synced_len: u64) -> Self {
        FileJournal {
            synced_len,
            old_pages: BTreeMap::new(),
            ops: Vec::new(),
        }
    }

    /// Saves the synced bytes of every not yet saved page in `[start, end)`.
    fn save_pages(&mut self, file: &File, start: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.synced_len);
        if start >= end {
            return Ok(());
        }
        for page in start / PAGE..=(end - 1) / PAGE {
            if self.old_pages.contains_key(&page) {
                continue;
            }
            let from = page * PAGE;
            let len = (self.synced_len - from).min(PAGE) as usize;
            let mut buf = vec![0; len];
            read_full(file, &mut buf, from)?;
            self.old_pages.insert(page, buf);
        }
        Ok(())
    }

    /// Writes `data` at `offset` through the journal.
    pub(crate) fn write(&mut self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        self.save_pages(file, offset, offset + data.len() as u64)?;
        file.write_all_at(data, offset)?;
        self.ops.push(Op::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    /// Sets the file's length through the journal.
    pub(crate) fn truncate(&mut self, file: &File, len: u64) -> io::Result<()> {
        let current = file.metadata()?.len();
        self.save_pages(file, len, current)?;
        file.set_len(len)?;
        self.ops.push(Op::Truncate { len });
        Ok(())
    }

    /// Rebuilds the synced image: the saved pages back, the synced length.
    fn undo(&self, file: &File) -> io::Result<()> {
        for (page, bytes) in &self.old_pages {
            file.write_all_at(bytes, page * PAGE)?;
        }
        file.set_len(self.synced_len)
    }

    fn replay(&self, file: &File, ops: &[Op]) -> io::Result<()> {
        for op in ops {
            match op {
                Op::Write { offset, data } => file.write_all_at(data, *offset)?,
                Op::Truncate { len } => file.set_len(*len)?,
            }
        }
        Ok(())
    }

    /// Pages whose contents may differ from the synced image.
    fn dirty_pages(&self, len_before: u64) -> BTreeSet<u64> {
        let mut pages: BTreeSet<u64> = self.old_pages.keys().copied().collect();
        for op in &self.ops {
            if let Op::Write { offset, data } = op {
                if !data.is_empty() {
                    pages.extend(offset / PAGE..=(offset + data.len() as u64 - 1) / PAGE);
                }
            }
        }
        if len_before > self.synced_len {
            pages.extend(self.synced_len / PAGE..len_before.div_ceil(PAGE));
        }
        pages
    }

    /// Drops what `mode` says the power cut loses; the file is left as the disk would show it.
    pub(crate) fn cut(&self, file: &File, mode: Mode, rng: &mut ChaCha8Rng) -> io::Result<FileCut> {
        let len_before = file.metadata()?.len();
        let pages = self.dirty_pages(len_before);
        let mut report = FileCut {
            path: String::new(),
            synced_len: self.synced_len,
            len_before,
            len_after: 0,
            ops: self.ops.len(),
            ops_kept: 0,
            pages: pages.len(),
            pages_kept: 0,
            bytes_unsynced: self.ops.iter().map(op_bytes).sum(),
        };
        match mode {
            Mode::All => self.undo(file)?,
            Mode::Torn(_) => {
                let keep = rng.gen_range(0..=self.ops.len());
                self.undo(file)?;
                self.replay(file, &self.ops[..keep])?;
                report.ops_kept = keep;
            }
            Mode::Reorder(_) => report.pages_kept = self.reorder(file, &pages, len_before, rng)?,
        }
        report.len_after = file.metadata()?.len();
        Ok(report)
    }

    /// Keeps each dirty page's new contents with probability 1/2, and the new length with
    /// probability 1/2 (extended to cover the kept pages). Returns how many pages were kept.
    fn reorder(
        &self,
        file: &File,
        pages: &BTreeSet<u64>,
        len_before: u64,
        rng: &mut ChaCha8Rng,
    ) -> io::Result<usize> {
        let mut kept = Vec::new();
        for &page in pages {
            if rng.gen_bool(0.5) && page * PAGE < len_before {
                let len = (len_before - page * PAGE).min(PAGE) as usize;
                let mut buf = vec![0; len];
                read_full(file, &mut buf, page * PAGE)?;
                kept.push((page, buf));
            }
        }
        let mut len = if rng.gen_bool(0.5) {
            len_before
        } else {
            self.synced_len
        };
        self.undo(file)?;
        for (page, bytes) in &kept {
            file.write_all_at(bytes, page * PAGE)?;
            len = len.max(page * PAGE + bytes.len() as u64);
        }
        file.set_len(len)?;
        Ok(kept.len())
    }
}

fn op_bytes(op: &Op) -> u64 {
    match op {
        Op::Write { data, .. } => data.len() as u64,
        Op::Truncate { .. } => 0,
    }
}

/// Reads `buf.len()` bytes at `offset`, zeros past the end of the file.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Applies random writes and truncates to an in-memory image and, through a journal, to a
    /// real file whose synced image is `synced`.
    fn history(seed: u64, synced: &[u8]) -> (File, FileJournal, Vec<Vec<u8>>) {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(synced, 0).unwrap();
        let mut journal = FileJournal::new(synced.len() as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut image = synced.to_vec();
        let mut images = vec![image.clone()];
        for _ in 0..rng.gen_range(1..20) {
            if rng.gen_bool(0.8) {
                let offset = rng.gen_range(0..5 * PAGE) as usize;
                let data = vec![rng.gen::<u8>() | 1; rng.gen_range(1..3 * PAGE as usize)];
                journal.write(&file, offset as u64, &data).unwrap();
                if image.len() < offset + data.len() {
                    image.resize(offset + data.len(), 0);
                }
                image[offset..offset + data.len()].copy_from_slice(&data);
            } else {
                let len = rng.gen_range(0..5 * PAGE) as usize;
                journal.truncate(&file, len as u64).unwrap();
                image.resize(len, 0);
            }
            images.push(image.clone());
        }
        (file, journal, images)
    }

    fn contents(file: &File) -> Vec<u8> {
        let mut buf = vec![0; file.metadata().unwrap().len() as usize];
        read_full(file, &mut buf, 0).unwrap();
        buf
    }

    fn synced(seed: u64) -> Vec<u8> {
        (0..seed as usize * 1500)
            .map(|i| (i % 250) as u8 + 2)
            .collect()
    }

    #[test]
    fn all_restores_the_synced_image_exactly() {
        for seed in 0..50 {
            let (file, journal, images) = history(seed, &synced(seed % 6));
            assert_eq!(contents(&file), *images.last().unwrap(), "seed {seed}");
            journal
                .cut(&file, Mode::All, &mut ChaCha8Rng::seed_from_u64(0))
                .unwrap();
            assert_eq!(contents(&file), images[0], "seed {seed}");
        }
    }

    #[test]
    fn torn_leaves_the_image_after_a_prefix_of_the_ops() {
        for seed in 0..50 {
            let (file, journal, images) = history(seed, &synced(seed % 6));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let cut = journal.cut(&file, Mode::Torn(seed), &mut rng).unwrap();
            assert_eq!(contents(&file), images[cut.ops_kept], "seed {seed}");
        }
    }

    #[test]
    fn reorder_leaves_each_page_old_or_new() {
        for seed in 0..50 {
            let (file, journal, images) = history(seed, &synced(seed % 6));
            let (old, new) = (&images[0], images.last().unwrap());
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            journal.cut(&file, Mode::Reorder(seed), &mut rng).unwrap();
            let got = contents(&file);
            let page = |img: &[u8], p: usize| {
                let mut v = img.get(p * 4096..).unwrap_or(&[]).to_vec();
                v.truncate(4096);
                v
            };
            for p in 0..got.len().div_ceil(4096) {
                let g = page(&got, p);
                let padded = |img: &[u8]| {
                    let mut v = page(img, p);
                    v.resize(g.len(), 0);
                    v
                };
                assert!(
                    g == padded(old) || g == padded(new),
                    "seed {seed}: page {p} is neither the synced nor the newest"
                );
            }
        }
    }
}
