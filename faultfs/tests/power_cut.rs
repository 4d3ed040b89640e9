//! What survives a power cut and what does not, through a real mount.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;

use common::{mounted, Fixture};
use riptide_faultfs::Mode;

#[test]
fn fsynced_data_survives_and_unsynced_data_is_gone() {
    let fx = Fixture::new();
    fx.write_synced("f", b"hello", true);
    let mut f = OpenOptions::new().append(true).open(fx.path("f")).unwrap();
    f.write_all(b" world").unwrap();
    drop(f);
    assert_eq!(
        fx.read("f").unwrap(),
        b"hello world",
        "reads see unsynced writes"
    );
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("f").unwrap(), b"hello");
    assert_eq!(fx.read_backing("f").unwrap(), b"hello");
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.bytes_unsynced, 6);
    assert!(report.entries_undone.is_empty(), "{report:?}");
}

#[test]
fn a_file_created_without_a_directory_fsync_disappears() {
    let fx = Fixture::new();
    fx.write_synced("g", b"data, fsynced", false);
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("g"), None);
    assert_eq!(fx.read_backing("g"), None);
    assert_eq!(report.entries_undone, vec!["create g"]);
}

#[test]
fn a_directory_made_without_a_parent_fsync_disappears() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("d")).unwrap();
    fx.write_synced("d/x", b"x", true);
    fx.fs().power_cut(Mode::All).unwrap();
    assert!(!fx.path("d").exists());
    assert!(!fx.backing.join("d").exists());
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone() {
    let fx = Fixture::new();
    fx.write_synced("target", b"old", true);
    fx.write_synced("tmp", b"new", false);
    fs::rename(fx.path("tmp"), fx.path("target")).unwrap();
    assert_eq!(fx.read("target").unwrap(), b"new");
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(
        fx.read("target").unwrap(),
        b"old",
        "the old target comes back"
    );
    assert_eq!(
        fx.read("tmp"),
        None,
        "tmp's creation was not durable either"
    );
    assert_eq!(
        report.entries_undone,
        vec!["rename tmp -> target", "create tmp"]
    );
}

#[test]
fn the_nodes_sequence_temp_fsync_rename_dir_fsync_survives() {
    let fx = Fixture::new();
    fx.write_synced("state", b"term 1", true);
    fx.write_synced("state.tmp", b"term 2", false);
    fs::rename(fx.path("state.tmp"), fx.path("state")).unwrap();
    fx.sync_dir("");
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("state").unwrap(), b"term 2");
    assert_eq!(fx.read("state.tmp"), None);
    assert!(report.entries_undone.is_empty() && report.files.is_empty());
    assert_eq!(
        fs::read_dir(fx.backing.join(riptide_faultfs::STASH))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let fx = Fixture::new();
    fx.write_synced("u", b"keep me", true);
    fs::remove_file(fx.path("u")).unwrap();
    assert_eq!(fx.read("u"), None);
    fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("u").unwrap(), b"keep me");
    // And a durable unlink stays.
    fs::remove_file(fx.path("u")).unwrap();
    fx.sync_dir("");
    fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("u"), None);
}

#[test]
fn a_truncate_without_fsync_is_undone() {
    let fx = Fixture::new();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    fx.write_synced("t", &data, true);
    let f = OpenOptions::new().write(true).open(fx.path("t")).unwrap();
    f.set_len(100).unwrap();
    drop(f);
    // O_TRUNC too.
    File::create(fx.path("t")).unwrap();
    assert_eq!(fx.read("t").unwrap().len(), 0);
    fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("t").unwrap(), data);
}

#[test]
fn a_power_cut_is_refused_while_a_file_is_open() {
    let fx = Fixture::new();
    let f = File::create(fx.path("open")).unwrap();
    let err = fx.fs().power_cut(Mode::All).unwrap_err();
    assert!(format!("{err:#}").contains("still open"), "{err:#}");
    drop(f);
    fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("open"), None);
}

#[test]
fn dropping_the_handle_unmounts() {
    let fx = Fixture::new();
    let mnt = fx.mnt.clone();
    assert!(mounted(&mnt));
    drop(fx);
    assert!(!mounted(&mnt));
}

#[test]
fn a_cut_right_after_sigkilling_a_writer_waits_for_its_files_to_be_released() {
    let fx = Fixture::new();
    fx.write_synced("log", b"synced;", true);
    let script = format!(
        "exec 3>>{}; printf unsynced >&3; touch {}; exec sleep 60",
        fx.path("log").display(),
        fx.dir.path().join("ready").display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    while !fx.dir.path().join("ready").exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(fx.fs().status().open_files, 1);
    child.kill().unwrap(); // SIGKILL, by its pid
    child.wait().unwrap();
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("log").unwrap(), b"synced;", "{report:?}");
}
