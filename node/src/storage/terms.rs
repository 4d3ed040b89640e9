//! The term of every entry in the log, kept in memory as runs.
//!
//! Terms change rarely (once per election), so the log's terms are stored as the list of indexes
//! where a new term starts. Looking a term up is a binary search; appending, truncating and
//! compacting touch only the end or the front of the list.

use crate::types::{Index, Term};

#[derive(Debug, Default)]
pub(crate) struct TermRuns {
    /// `(first index, term)` of each run, strictly increasing in both.
    runs: Vec<(Index, Term)>,
}

impl TermRuns {
    /// Records that entry `index` (the next one after all recorded) has `term`.
    pub fn push(&mut self, index: Index, term: Term) {
        if self.runs.last().map(|&(_, last)| last) != Some(term) {
            self.runs.push((index, term));
        }
    }

    /// The term of entry `index`, given that the log holds it.
    pub fn term_of(&self, index: Index) -> Option<Term> {
        let after = self.runs.partition_point(|&(first, _)| first <= index);
        after.checked_sub(1).map(|at| self.runs[at].1)
    }

    /// Forgets entries `index` and after.
    pub fn truncate_from(&mut self, index: Index) {
        let keep = self.runs.partition_point(|&(first, _)| first < index);
        self.runs.truncate(keep);
    }

    /// Forgets entries before `index`, except what it takes to answer for `index` and after.
    pub fn discard_before(&mut self, index: Index) {
        let holding = self.runs.partition_point(|&(first, _)| first <= index);
        if holding > 1 {
            self.runs.drain(..holding - 1);
        }
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_answer_like_a_vector_of_terms() {
        let terms = [1, 1, 2, 2, 2, 5, 7, 7];
        let mut runs = TermRuns::default();
        for (i, t) in terms.iter().enumerate() {
            runs.push(i as Index + 1, *t);
        }
        assert_eq!(runs.runs.len(), 4);
        for (i, t) in terms.iter().enumerate() {
            assert_eq!(runs.term_of(i as Index + 1), Some(*t));
        }
        runs.truncate_from(5);
        assert_eq!(runs.term_of(4), Some(2));
        runs.push(5, 3);
        assert_eq!(runs.term_of(5), Some(3));
        runs.discard_before(4);
        assert_eq!(runs.term_of(4), Some(2));
        assert_eq!(runs.term_of(5), Some(3));
        assert_eq!(runs.runs.len(), 2);
    }
}
