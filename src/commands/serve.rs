//! `riptide serve`: the results dir over HTTP, for reading runs in a browser.
//!
//! `/` is the index of runs (built fresh on each request, so runs stored while serving appear);
//! every other path is a file or folder under the results dir: run folders get a listing,
//! `history.jsonl` is shown as text (or downloaded with `?download`), reports are served with
//! their content types. It binds 127.0.0.1 by default: the store holds node logs and commands,
//! which are nobody else's business.
//!
//! **Nothing outside the results dir is served.** A request path is refused (403) if it has an
//! encoded `/` or `\`, a NUL, an empty segment (`//`, which would make an absolute path), or a
//! `.` or `..` segment, before or after percent-decoding; and the file it names is resolved
//! through every symlink and must still lie inside the results dir (so `latest`, a link inside
//! the store, works, and a link pointing out of it does not).
//!
//! axum (on hyper) does the HTTP; this module only maps paths to files.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::exit::Exit;
use riptide_report::html_escape as esc;
use riptide_report::index::url_path;

/// Serve the results dir over HTTP: the index of runs, timelines, plots, histories.
///
/// Binds 127.0.0.1 unless --bind says otherwise. Paths outside the results dir are refused.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on. Anything but a loopback address exposes the runs to the network.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,

    /// The results dir to serve.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results_dir: PathBuf,
}

/// Why a path is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It tries to leave the results dir (or is malformed in a way that could).
    Outside(&'static str),
    NotFound,
}

/// Maps a raw request path (still percent-encoded) to a file or folder inside `root`, which
/// must be canonical. See the module docs for what is refused.
pub fn resolve(root: &Path, raw: &str) -> Result<PathBuf, Refusal> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(Refusal::Outside("the path must start with /"));
    };
    let lower = rest.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return Err(Refusal::Outside("encoded slashes and NULs are not allowed"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let mut path = root.to_path_buf();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            // Only a trailing slash (or the root itself) may leave a segment empty.
            if i + 1 == segments.len() {
                continue;
            }
            return Err(Refusal::Outside("empty path segments are not allowed"));
        }
        let decoded = percent_decode(seg).ok_or(Refusal::Outside("bad percent-encoding"))?;
        if decoded == b"." || decoded == b".." {
            return Err(Refusal::Outside(". and .. are not allowed"));
        }
        if decoded.contains(&b'/') || decoded.contains(&b'\\') || decoded.contains(&0) {
            return Err(Refusal::Outside("encoded slashes and NULs are not allowed"));
        }
        path.push(OsStr::from_bytes(&decoded));
    }
    // Through every symlink: the file itself must be inside the root.
    let real = path.canonicalize().map_err(|_| Refusal::NotFound)?;
    if !real.starts_with(root) {
        return Err(Refusal::Outside("a symlink leads outside the results dir"));
    }
    Ok(real)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The content type of a file, by name. History files are text, so a browser shows them.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(OsStr::to_str).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "jsonl" | "log" | "txt" | "edn" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "css" => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    }
}

struct Root {
    dir: PathBuf,
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn handle(State(root): State<Arc<Root>>, req: Request) -> Response {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let raw = req.uri().path().to_string();
    let download = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "download" || p.starts_with("download="))
    });
    let mut response = respond(&root, &raw, download).await;
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if head {
        *response.body_mut() = Body::empty();
    }
    response
}

async fn respond(root: &Root, raw: &str, download: bool) -> Response {
    if raw == "/" || raw == "/index.html" {
        let dir = root.dir.clone();
        let page = move || {
            let rows = riptide_report::index::scan(&dir)?;
            let campaigns = riptide_report::campaign::index_section(&dir);
            Ok::<_, std::io::Error>(riptide_report::index::render(&rows, &campaigns))
        };
        return match tokio::task::spawn_blocking(page).await {
            Ok(Ok(page)) => html(page),
            _ => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the results dir\n".into(),
            ),
        };
    }
    let path = match resolve(&root.dir, raw) {
        Ok(p) => p,
        Err(Refusal::NotFound) => {
            return text(StatusCode::NOT_FOUND, format!("not found: {raw}\n"))
        }
        Err(Refusal::Outside(why)) => {
            return text(
                StatusCode::FORBIDDEN,
                format!("refused: {why}; only files inside the results dir are served\n"),
            )
        }
    };
    if path.is_dir() {
        if !raw.ends_with('/') {
            // Relative links in the folder's pages need the trailing slash.
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{raw}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        return match listing(&path, raw) {
            Ok(page) => html(page),
            Err(err) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot list {raw}: {err}\n"),
            ),
        };
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(err) => return text(StatusCode::NOT_FOUND, format!("cannot open {raw}: {err}\n")),
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(&path))
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(len) = len {
        builder = builder.header(header::CONTENT_LENGTH, len);
    }
    if download {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().replace(['"', '\\'], "_"))
            .unwrap_or_default();
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        );
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A folder's entries as links, folders first.
fn listing(dir: &Path, raw: &str) -> std::io::Result<String> {
    let mut entries: Vec<(bool, String, u64)> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((!meta.is_dir(), name, meta.len()))
        })
        .collect();
    entries.sort();
    let mut h = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>\
         <style>body{{font:14px/1.5 system-ui,sans-serif;margin:16px 24px}}td{{padding:1px 14px 1px 0}}\
         .n{{text-align:right;color:#666}}</style></head><body>\n<h1 style=\"font-size:18px\">{0}</h1>\n\
         <p><a href=\"../\">up</a> · <a href=\"/\">all runs</a></p>\n<table>\n",
        esc(raw)
    );
    for (is_file, name, len) in entries {
        let href = url_path(&name) + if is_file { "" } else { "/" };
        let size = if is_file {
            format!("{len} B")
        } else {
            String::new()
        };
        let extra = if name.ends_with(".jsonl") {
            format!(" <a href=\"{href}?download\">download</a>")
        } else {
            String::new()
        };
        h.push_str(&format!(
            "<tr><td><a href=\"{href}\">{}{}</a>{extra}</td><td class=\"n\">{size}</td></tr>\n",
            esc(&name),
            if is_file { "" } else { "/" }
        ));
    }
    h.push_str("</table>\n</body></html>\n");
    Ok(h)
}

/// Runs `riptide serve` until Ctrl-C.
pub fn serve(args: ServeArgs) -> Result<u8, Exit> {
    if !args.results_dir.is_dir() {
        return Err(Exit::bad_args(format!(
            "results dir {} does not exist; run `riptide test` first or pass --results-dir DIR",
            args.results_dir.display()
        )));
    }
    let dir = args.results_dir.canonicalize().map_err(|e| {
        Exit::bad_args(format!(
            "cannot open results dir {}: {e}",
            args.results_dir.display()
        ))
    })?;
    if let Err(err) = riptide_report::index::write_index(&dir) {
        eprintln!("riptide: warning: cannot rewrite the index: {err:#}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(format!("cannot start the tokio runtime: {e}")))?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!("{addr} is already in use")
            } else {
                format!("cannot listen on {addr}: {e}")
            };
            Exit::bad_args(format!("{why}; pass another --port P (or --port 0 for any free one)"))
        })?;
        let bound = listener.local_addr().unwrap_or(addr);
        if !args.bind.is_loopback() {
            eprintln!(
                "riptide: warning: listening on {bound}: every run, log and history is readable from the network"
            );
        }
        println!(
            "riptide: serving {} at http://{bound}/ (Ctrl-C to stop)",
            dir.display()
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::new(Root { dir }));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Exit::crashed(format!("the server failed: {e}")))?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_results_dir_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("results");
        std::fs::create_dir_all(root.join("t/20261123T000000")).unwrap();
        std::fs::write(root.join("t/20261123T000000/history.jsonl"), "{}\n").unwrap();
        std::fs::write(tmp.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink("t/20261123T000000", root.join("latest")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("escape")).unwrap();
        let root = root.canonicalize().unwrap();
        let ok = |p: &str| resolve(&root, p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert!(ok("/t/20261123T000000/history.jsonl").is_file());
        assert!(
            ok("/latest/history.jsonl").is_file(),
            "latest is inside the root"
        );
        assert!(ok("/t/20261123T000000/").is_dir());
        assert!(
            ok("/%74/20261123T000000/history.jsonl").is_file(),
            "%74 is t"
        );
        for bad in [
            "/../secret",
            "/t/../../secret",
            "/%2e%2e/secret",
            "/%2E%2E/secret",
            "/t/%2e%2e/%2e%2e/secret",
            "/..%2fsecret",
            "/t%2F..%2F..%2Fsecret",
            "/..%5csecret",
            "//etc/passwd",
            "/t//x",
            "/./t",
            "/escape",
            "/t/%00",
            "/%zz",
            "relative",
        ] {
            assert!(
                matches!(resolve(&root, bad), Err(Refusal::Outside(_))),
                "{bad} must be refused, got {:?}",
                resolve(&root, bad)
            );
        }
        assert_eq!(resolve(&root, "/nope"), Err(Refusal::NotFound));
    }

    #[test]
    fn history_files_are_text_and_reports_have_their_types() {
        assert_eq!(
            content_type(Path::new("history.jsonl")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("timeline.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("latency.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("results.json")), "application/json");
    }
}
