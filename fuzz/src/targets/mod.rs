//! The five targets. Each reads its input's structure with [`arbitrary::Unstructured`] and
//! returns a short label of what happened, the driver's measure of progress.

pub mod client;
pub mod frame;
pub mod hello;
pub mod raft;
pub mod storage;

use arbitrary::Unstructured;

/// A number that is small most of the time (where Raft's interesting cases live) and anything
/// at all sometimes (where overflow lives).
pub fn small_or_any(u: &mut Unstructured<'_>, small: u64) -> u64 {
    match u.int_in_range(0u8..=9).unwrap_or(0) {
        0 => u.arbitrary::<u64>().unwrap_or(u64::MAX),
        _ => u.int_in_range(0..=small).unwrap_or(0),
    }
}

/// The name of an error's kind: its Debug text up to the first brace or parenthesis.
pub fn kind(err: &impl std::fmt::Debug) -> String {
    let text = format!("{err:?}");
    let end = text.find(['{', '(', ' ']).unwrap_or(text.len());
    text[..end].to_string()
}

/// `n` as a bucket: 0, 1, 2-3, 4-7, ... (labels stay few).
pub fn bucket(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}
