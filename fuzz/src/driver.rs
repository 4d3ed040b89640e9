//! The driver: seeded input generation, a corpus of inputs that reached new outcomes, panics
//! caught and saved.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mutate::{fresh, mutate};
use crate::Target;

/// How long and how to fuzz one target.
#[derive(Clone, Debug)]
pub struct Options {
    pub duration: Duration,
    /// Stop after this many inputs even if time is left (CI runs use it for a fixed workload).
    pub max_execs: Option<u64>,
    pub seed: u64,
    /// Where inputs that panicked are saved.
    pub crash_dir: PathBuf,
    /// Longest input generated, in bytes.
    pub max_len: usize,
}

/// What one target's run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub execs: u64,
    pub elapsed: Duration,
    /// Distinct outcome labels reached.
    pub outcomes: usize,
    /// Inputs kept because they reached a new outcome (the seeds included).
    pub corpus: usize,
    /// Saved inputs that panicked.
    pub crashes: Vec<PathBuf>,
}

impl Report {
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{:<8} seed {}  {} execs in {:.0} s ({:.0}/s), {} distinct outcomes, corpus {}, crashes {}",
            self.target,
            self.seed,
            self.execs,
            secs,
            self.execs as f64 / secs.max(1e-9),
            self.outcomes,
            self.corpus,
            self.crashes.len()
        )
    }
}

thread_local! {
    /// Whether this thread is running a fuzz input (then its panics are expected and quiet).
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last such panic happened.
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Wraps the panic hook once: a panic inside a fuzz input only records where it happened (the
/// driver prints one line per crash); any other panic goes to the previous hook as before.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(|f| f.get()) {
                let at = info
                    .location()
                    .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs one input, catching a panic as `Err(message and place)`.
pub fn run_one(target: &Target, input: &[u8]) -> Result<String, String> {
    quiet_panics();
    FUZZING.with(|f| f.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    FUZZING.with(|f| f.set(false));
    result.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let at = PANIC_AT.with(|p| std::mem::take(&mut *p.borrow_mut()));
        format!("{message}{at}")
    })
}

/// Fuzzes `target` for `opts.duration` (or `opts.max_execs` inputs).
pub fn fuzz(target: &Target, opts: &Options) -> Report {
    let mut rng =
        ChaCha8Rng::seed_from_u64(opts.seed ^ u64::from(crc32fast::hash(target.name.as_bytes())));
    let start = Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut crashes = Vec::new();
    let mut execs = 0u64;
    let mut pending: Vec<Vec<u8>> = (target.seeds)();
    loop {
        if execs.is_multiple_of(64)
            && (start.elapsed() >= opts.duration || opts.max_execs.is_some_and(|m| execs >= m))
        {
            break;
        }
        let input = match pending.pop() {
            Some(seed) => seed,
            None if corpus.is_empty() || rng.gen_bool(0.1) => fresh(&mut rng, opts.max_len),
            None => {
                let a = &corpus[rng.gen_range(0..corpus.len())];
                let b = &corpus[rng.gen_range(0..corpus.len())];
                mutate(&mut rng, a, b, opts.max_len)
            }
        };
        execs += 1;
        match run_one(target, &input) {
            Ok(outcome) => {
                if seen.insert(outcome) {
                    corpus.push(input);
                }
            }
            Err(message) => {
                let path = save_crash(&opts.crash_dir, target.name, &input);
                eprintln!(
                    "riptide-fuzz: {} panicked: {message}; input saved to {} (replay: riptide-fuzz replay {} {})",
                    target.name,
                    path.display(),
                    target.name,
                    path.display()
                );
                crashes.push(path);
                if crashes.len() >= 10 {
                    break;
                }
            }
        }
    }
    Report {
        target: target.name,
        seed: opts.seed,
        execs,
        elapsed: start.elapsed(),
        outcomes: seen.len(),
        corpus: corpus.len(),
        crashes,
    }
}

fn save_crash(dir: &Path, name: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}-{:08x}.bin", crc32fast::hash(input)));
    if let Err(err) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!(
            "riptide-fuzz: cannot save the crashing input to {}: {err}",
            path.display()
        );
    }
    path
}
