//! The store's layout: `results/<test-name>/<YYYYMMDDTHHMMSS>/` per run, `results/latest`
//! pointing at the newest one, and the atomic writes every file of a run folder goes through.
//!
//! Errors are [`Error::Layout`] with one line that says what to do (the CLI turns them into exit
//! 254, bad input).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

fn bad(message: String) -> Error {
    Error::Layout(message)
}

/// UTC `YYYYMMDDTHHMMSS` for a Unix time.
pub fn timestamp(unix_secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    // `2026-11-23T23:34:47Z` without the separators.
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect()
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Makes sure the results dir exists and is writable; creates it if only the last component is
/// missing. The error is one line that says what to do.
pub fn prepare_results_dir(results: &Path) -> Result<()> {
    if !results.exists() {
        let parent = results
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(bad(format!(
                "results dir {} does not exist and neither does its parent {}; create it or pass --results-dir DIR",
                results.display(),
                parent.display()
            )));
        }
        std::fs::create_dir(results).map_err(|e| {
            bad(format!(
                "cannot create results dir {}: {e}; pass a writable --results-dir DIR",
                results.display()
            ))
        })?;
    }
    if !results.is_dir() {
        return Err(bad(format!(
            "results dir {} is not a directory; pass --results-dir DIR",
            results.display()
        )));
    }
    let probe = results.join(format!(".riptide-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        bad(format!(
            "results dir {} is not writable ({e}); fix its permissions or pass --results-dir DIR",
            results.display()
        ))
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Creates a fresh run folder `results/<name>/<timestamp>[-n]/`.
pub fn create_run_dir(results: &Path, test_name: &str, unix_secs: u64) -> Result<PathBuf> {
    if test_name.is_empty() || test_name.contains('/') || test_name.starts_with('.') {
        return Err(bad(format!(
            "test name `{test_name}` must be non-empty, without `/`, not starting with `.`"
        )));
    }
    let base = results.join(test_name);
    std::fs::create_dir_all(&base)
        .map_err(|e| bad(format!("cannot create {}: {e}", base.display())))?;
    let stamp = timestamp(unix_secs);
    for n in 1.. {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = base.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(bad(format!("cannot create {}: {e}", dir.display()))),
        }
    }
    unreachable!()
}

/// Points `results/latest` at `run` (relative link, replaced atomically).
pub fn update_latest(results: &Path, run: &Path) -> std::io::Result<()> {
    let target = run.strip_prefix(results).unwrap_or(run);
    let tmp = results.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, results.join("latest"))
}

/// Writes `bytes` to `path` through a temp file and a rename, so a reader (`riptide serve`, a
/// browser reloading, `analyze`) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other);
    if let Ok(text) = &mut text {
        text.push(b'\n');
    }
    text.and_then(|text| write_atomic(path, &text))
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_and_sortable() {
        assert_eq!(timestamp(0), "19700101T000000");
        assert_eq!(timestamp(1_795_478_399), "20261123T235959");
    }

    #[test]
    fn run_dirs_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_run_dir(dir.path(), "t", 100).unwrap();
        let b = create_run_dir(dir.path(), "t", 100).unwrap();
        assert_ne!(a, b);
        assert!(b.ends_with("19700101T000140-2"));
        update_latest(dir.path(), &b).unwrap();
        assert_eq!(
            std::fs::read_link(dir.path().join("latest")).unwrap(),
            Path::new("t/19700101T000140-2")
        );
    }

    #[test]
    fn a_results_dir_under_a_missing_parent_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare_results_dir(&dir.path().join("no/such")).unwrap_err();
        assert!(matches!(err, Error::Layout(_)), "{err:?}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        prepare_results_dir(&dir.path().join("fresh")).unwrap();
        assert!(dir.path().join("fresh").is_dir());
    }
}
