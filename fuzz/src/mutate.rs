//! Byte-level mutations, all drawn from one seeded generator so that a run is reproducible.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Integers at the edges of what parsers check: 0, 1, lengths around powers of two, the frame
/// limit, `u32::MAX`, `u64::MAX`.
const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0xff,
    0x1_0000,
    16 * 1024 * 1024,
    16 * 1024 * 1024 + 1,
    u32::MAX as u64,
    i64::MAX as u64,
    u64::MAX,
];

/// A fresh random input of up to `max` bytes.
pub fn fresh(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max);
    (0..len).map(|_| rng.gen()).collect()
}

/// `input` changed by one to four mutations, using `other` for splices; at most `max` bytes.
pub fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8], max: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        mutate_once(rng, &mut out, other);
    }
    out.truncate(max);
    out
}

fn mutate_once(rng: &mut ChaCha8Rng, out: &mut Vec<u8>, other: &[u8]) {
    if out.is_empty() {
        out.push(rng.gen());
        return;
    }
    let at = rng.gen_range(0..out.len());
    match rng.gen_range(0..7) {
        0 => out[at] ^= 1 << rng.gen_range(0..8),
        1 => out[at] = rng.gen(),
        2 => {
            // An interesting integer, big-endian or little-endian, at a random width.
            let value = INTERESTING[rng.gen_range(0..INTERESTING.len())];
            let width = [1, 2, 4, 8][rng.gen_range(0..4)];
            let bytes = if rng.gen() {
                value.to_be_bytes()[8 - width..].to_vec()
            } else {
                value.to_le_bytes()[..width].to_vec()
            };
            for (k, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        3 => {
            let end = (at + rng.gen_range(1..=16)).min(out.len());
            out.drain(at..end);
        }
        4 => {
            let run: Vec<u8> = (0..rng.gen_range(1..=16)).map(|_| rng.gen()).collect();
            out.splice(at..at, run);
        }
        5 => {
            // Duplicate a run of the input in place.
            let end = (at + rng.gen_range(1..=32)).min(out.len());
            let run = out[at..end].to_vec();
            out.splice(at..at, run);
        }
        _ => {
            // Splice: our head, another input's tail.
            if !other.is_empty() {
                let from = rng.gen_range(0..other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
}
