//! `riptide serve` as a browser (or an attacker) talks to it: the index, a run's files with their
//! content types, history downloads, folder listings, and every way of asking for a file outside
//! the results dir refused. Requests are written by hand over TCP so that `..` and encodings reach
//! the server exactly as written (an HTTP client would normalise them away).

mod report_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use report_support::*;

/// A `riptide serve` child, killed (by its pid) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(results: &std::path::Path, port: &str) -> Server {
    let mut child = Command::new(riptide_bin())
        .args([
            "serve",
            "--port",
            port,
            "--results-dir",
            results.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start riptide serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in `{line}`"))
        .to_string();
    Server { child, addr }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn get(addr: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

#[test]
fn serve_answers_the_index_and_run_files_and_refuses_paths_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let dir = synthetic_run(
        &results,
        "riptide",
        "20261124T030000",
        2,
        &stale_read_history(),
    );
    std::os::unix::fs::symlink("riptide/20261124T030000", results.join("latest")).unwrap();
    let out = riptide(&[
        "analyze",
        dir.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Things outside the store that must never be served.
    std::fs::write(tmp.path().join("secret.txt"), "TOP-SECRET").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.txt"), results.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), results.join("escape-dir")).unwrap();

    let server = start(&results, "0");
    let a = server.addr.as_str();
    assert!(
        a.starts_with("127.0.0.1:"),
        "binds loopback by default: {a}"
    );

    let index = get(a, "/");
    assert_eq!(index.status, 200);
    assert!(index.headers.contains("content-type: text/html"));
    assert!(
        index.body.contains("riptide runs")
            && index.body.contains("riptide/20261124T030000/timeline.html")
    );

    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    for path in [
        "/riptide/20261124T030000/history.jsonl",
        "/latest/history.jsonl",
    ] {
        let r = get(a, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.headers
                .contains("content-type: text/plain; charset=utf-8"),
            "{path}: {}",
            r.headers
        );
        assert_eq!(r.body, history, "{path} is the file");
    }
    let r = get(a, "/latest/history.jsonl?download");
    assert!(
        r.headers
            .contains("content-disposition: attachment; filename=\"history.jsonl\""),
        "{}",
        r.headers
    );
    let r = get(a, "/latest/timeline.html");
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("content-type: text/html; charset=utf-8"));
    assert!(r.body.contains("riptide-data"));
    let r = get(a, "/latest/latency.svg");
    assert!(r.headers.contains("content-type: image/svg+xml"));
    let r = get(a, "/latest");
    assert_eq!(r.status, 301, "a folder without its slash is redirected");
    let r = get(a, "/latest/");
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("href=\"history.jsonl?download\""),
        "{}",
        r.body
    );
    assert_eq!(get(a, "/latest/nope.txt").status, 404);

    for bad in [
        "/../secret.txt",
        "/riptide/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/secret.txt",
        "/riptide/..%2f..%2fsecret.txt",
        "/..%2fsecret.txt",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/..\\secret.txt",
        "/escape.txt",
        "/escape-dir/secret.txt",
        "/latest/%00",
    ] {
        let r = get(a, bad);
        assert_eq!(
            r.status, 403,
            "{bad} must be refused, got {} {}",
            r.status, r.body
        );
        assert!(
            !r.body.contains("TOP-SECRET") && !r.body.contains("root:"),
            "{bad} leaked"
        );
    }
    let r = get(a, "/etc/passwd");
    assert_eq!(
        r.status, 404,
        "an absolute path is looked up inside the store only"
    );

    // The port is taken: a clear error, exit 254.
    let port = a.rsplit(':').next().unwrap();
    let out = riptide(&[
        "serve",
        "--port",
        port,
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains("already in use") && stderr.contains("--port"),
        "{stderr}"
    );
    drop(server);

    let out = riptide(&[
        "serve",
        "--results-dir",
        tmp.path().join("none").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(254));
}
