//! Plain filesystem behaviour through the mount, and directory renames across a power cut.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::Fixture;
use riptide_faultfs::Mode;

#[test]
fn listing_chmod_statfs_and_errors_pass_through() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("d")).unwrap();
    fs::write(fx.path("d/a"), b"1").unwrap();
    fs::write(fx.path("b"), b"2").unwrap();
    let mut names: Vec<String> = fs::read_dir(&fx.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "d"], "the stash is not shown");
    fs::set_permissions(fx.path("b"), fs::Permissions::from_mode(0o600)).unwrap();
    let mode = fs::metadata(fx.backing.join("b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        fs::remove_dir(fx.path("d")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(
        fs::remove_file(fx.path("d")).unwrap_err().raw_os_error(),
        Some(libc::EISDIR)
    );
    assert!(fs::metadata(fx.path(riptide_faultfs::STASH)).is_err());
    assert!(fs::hard_link(fx.path("b"), fx.path("c")).is_err());
    let out = std::process::Command::new("df")
        .arg(&fx.mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "statfs: {out:?}");
}

#[test]
fn a_directory_rename_moves_its_files_and_is_undone_with_them() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("old")).unwrap();
    fx.sync_dir("");
    fx.write_synced("old/f", b"synced", true);
    fs::rename(fx.path("old"), fx.path("new")).unwrap();
    fs::write(fx.path("new/f"), b"changed after the rename").unwrap();
    assert_eq!(fx.read("new/f").unwrap(), b"changed after the rename");
    let report = fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("old/f").unwrap(), b"synced", "{report:?}");
    assert!(!fx.path("new").exists());
}

#[test]
fn a_rename_over_an_empty_directory_is_undone() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("a")).unwrap();
    fs::create_dir(fx.path("b")).unwrap();
    fx.write_synced("a/x", b"x", true);
    fx.sync_dir("");
    fs::rename(fx.path("a"), fx.path("b")).unwrap();
    assert_eq!(fx.read("b/x").unwrap(), b"x");
    fx.fs().power_cut(Mode::All).unwrap();
    assert_eq!(fx.read("a/x").unwrap(), b"x");
    assert!(fx.path("b").is_dir());
    assert_eq!(fs::read_dir(fx.path("b")).unwrap().count(), 0);
}

#[test]
fn several_cuts_in_a_row_and_work_between_them() {
    let fx = Fixture::new();
    for round in 0..3u8 {
        fx.write_synced(&format!("f{round}"), &[round; 10], true);
        fs::write(fx.path("scratch"), [9u8; 5000]).unwrap();
        fx.fs().power_cut(Mode::Reorder(round as u64)).unwrap();
        assert_eq!(fx.read(&format!("f{round}")).unwrap(), [round; 10]);
        assert_eq!(fx.read("scratch"), None);
    }
    assert_eq!(fx.fs().status().power_cuts, 3);
}

#[test]
fn the_handle_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<riptide_faultfs::MountHandle>();
    send_sync::<riptide_faultfs::PowerCutReport>();
}
