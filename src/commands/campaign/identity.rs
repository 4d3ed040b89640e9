//! Which node a campaign tested: the binary, its checksum, and the git state of its source.
//!
//! Two campaigns compared after a code change should say what changed. The binary is riptide
//! itself for its built-in node, or the `--node-bin` given to the test. The git commit and
//! dirty state are read from the repository that holds the binary (a `target/release/` inside a
//! checkout), when there is one; `None` when git or the repository is not there.

use std::path::Path;
use std::process::Command;

use riptide_store::campaign::NodeIdentity;

/// The identity of `binary`.
pub fn of_binary(binary: &Path) -> NodeIdentity {
    let (crc, bytes) = match std::fs::read(binary) {
        Ok(data) => (format!("{:08x}", crc32fast::hash(&data)), data.len() as u64),
        Err(_) => (String::new(), 0),
    };
    let dir = binary.parent().unwrap_or(Path::new("."));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]);
    let git_dirty = git_commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    NodeIdentity {
        binary: binary.display().to_string(),
        binary_crc32: crc,
        binary_bytes: bytes,
        git_commit,
        git_dirty,
    }
}

/// The binary the runs' nodes come from: `--node-bin PATH` among the test options, else riptide.
pub fn node_binary(test_args: &[String], riptide: &Path) -> std::path::PathBuf {
    let mut args = test_args.iter();
    while let Some(arg) = args.next() {
        if arg == "--node-bin" {
            if let Some(path) = args.next() {
                return path.into();
            }
        } else if let Some(path) = arg.strip_prefix("--node-bin=") {
            return path.into();
        }
    }
    riptide.to_path_buf()
}

/// `3f2a1c0 (dirty)`, for people.
pub fn describe(node: &NodeIdentity) -> String {
    let commit = node
        .git_commit
        .as_deref()
        .map(|c| c.chars().take(10).collect::<String>());
    match (commit, node.git_dirty) {
        (Some(c), Some(true)) => format!("{c} (dirty), binary crc32 {}", node.binary_crc32),
        (Some(c), _) => format!("{c}, binary crc32 {}", node.binary_crc32),
        (None, _) => format!("binary crc32 {} (no git)", node.binary_crc32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_bin_among_the_test_options_names_the_binary() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let me = Path::new("/usr/bin/riptide");
        assert_eq!(node_binary(&args(&["--nodes", "3"]), me), me);
        assert_eq!(
            node_binary(&args(&["--node-bin", "/x/node"]), me),
            Path::new("/x/node")
        );
        assert_eq!(node_binary(&args(&["--node-bin=/y"]), me), Path::new("/y"));
    }

    #[test]
    fn the_checksum_follows_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"node v1").unwrap();
        let one = of_binary(&a);
        std::fs::write(&a, b"node v2").unwrap();
        let two = of_binary(&a);
        assert_eq!(one.binary_bytes, 7);
        assert_ne!(one.binary_crc32, two.binary_crc32);
        assert_eq!(one.git_commit, None, "a temp dir is no repository");
    }
}
