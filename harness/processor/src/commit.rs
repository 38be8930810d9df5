//! Which offsets may be committed: per partition, the end of the done prefix.
//!
//! Messages of one partition start in offset order but may finish in any order.
//! Committing offset N+1 tells Kafka that everything up to N is done, so only the
//! contiguous prefix of finished offsets may be committed.

use std::collections::BTreeMap;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Partition {
    pub topic: String,
    pub partition: i32,
}

/// Offsets started and finished, per partition.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    partitions: BTreeMap<Partition, PartitionState>,
}

#[derive(Debug, Default)]
struct PartitionState {
    /// Started offsets not yet committable; `true` once finished.
    pending: BTreeMap<i64, bool>,
    /// The next offset to commit (last offset of the done prefix + 1).
    commit_at: Option<i64>,
    /// `commit_at` has moved since the last `take_new_commits`.
    dirty: bool,
}

impl OffsetTracker {
    /// A message at `offset` was handed out for processing.
    pub fn started(&mut self, tp: &Partition, offset: i64) {
        let state = self.partitions.entry(tp.clone()).or_default();
        // A redelivered offset already below the commit point changes nothing.
        if state.commit_at.is_some_and(|c| offset < c) {
            return;
        }
        state.pending.entry(offset).or_insert(false);
    }

    /// The message at `offset` is done (output written, or deliberately skipped).
    pub fn finished(&mut self, tp: &Partition, offset: i64) {
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        if let Some(done) = state.pending.get_mut(&offset) {
            *done = true;
        }
        while let Some(entry) = state.pending.first_entry() {
            if !*entry.get() {
                break;
            }
            let next = *entry.key() + 1;
            entry.remove();
            if state.commit_at.is_none_or(|c| next > c) {
                state.commit_at = Some(next);
                state.dirty = true;
            }
        }
    }

    /// Commit positions (offset + 1) that moved since the last call.
    pub fn take_new_commits(&mut self) -> Vec<(Partition, i64)> {
        let mut out = Vec::new();
        for (tp, state) in &mut self.partitions {
            if state.dirty {
                state.dirty = false;
                if let Some(at) = state.commit_at {
                    out.push((tp.clone(), at));
                }
            }
        }
        out
    }

    /// Every known commit position, moved or not (for the final commit).
    pub fn all_commits(&self) -> Vec<(Partition, i64)> {
        self.partitions.iter().filter_map(|(tp, s)| s.commit_at.map(|at| (tp.clone(), at))).collect()
    }

    /// Messages started and not finished.
    pub fn unfinished(&self) -> usize {
        self.partitions.values().map(|s| s.pending.values().filter(|done| !**done).count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Partition {
        Partition { topic: "events".into(), partition: p }
    }

    #[test]
    fn in_order_completion_commits_each_next_offset() {
        let mut t = OffsetTracker::default();
        t.started(&tp(0), 0);
        t.started(&tp(0), 1);
        t.finished(&tp(0), 0);
        assert_eq!(t.take_new_commits(), [(tp(0), 1)]);
        assert!(t.take_new_commits().is_empty(), "nothing moved");
        t.finished(&tp(0), 1);
        assert_eq!(t.take_new_commits(), [(tp(0), 2)]);
        assert_eq!(t.unfinished(), 0);
    }

    #[test]
    fn out_of_order_completion_waits_for_the_gap() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.started(&tp(0), o);
        }
        t.finished(&tp(0), 12);
        t.finished(&tp(0), 14);
        assert!(t.take_new_commits().is_empty(), "10 still running");
        t.finished(&tp(0), 10);
        assert_eq!(t.take_new_commits(), [(tp(0), 11)]);
        t.finished(&tp(0), 11);
        assert_eq!(t.take_new_commits(), [(tp(0), 13)], "12 was already done");
        assert_eq!(t.unfinished(), 1);
        t.finished(&tp(0), 13);
        assert_eq!(t.take_new_commits(), [(tp(0), 15)]);
        assert_eq!(t.all_commits(), [(tp(0), 15)]);
    }

    #[test]
    fn offsets_need_not_be_contiguous_numbers() {
        // Compaction and transaction markers leave holes in offsets.
        let mut t = OffsetTracker::default();
        t.started(&tp(0), 3);
        t.started(&tp(0), 7);
        t.finished(&tp(0), 7);
        t.finished(&tp(0), 3);
        assert_eq!(t.take_new_commits(), [(tp(0), 8)]);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.started(&tp(0), 0);
        t.started(&tp(1), 0);
        t.started(&tp(1), 1);
        t.finished(&tp(1), 1);
        t.finished(&tp(0), 0);
        assert_eq!(t.take_new_commits(), [(tp(0), 1)]);
        t.finished(&tp(1), 0);
        assert_eq!(t.take_new_commits(), [(tp(1), 2)]);
        assert_eq!(t.all_commits(), [(tp(0), 1), (tp(1), 2)]);
    }

    #[test]
    fn abandoned_work_holds_the_commit_point() {
        let mut t = OffsetTracker::default();
        t.started(&tp(0), 0);
        t.started(&tp(0), 1);
        t.finished(&tp(0), 1);
        // Offset 0 never finishes (abandoned at shutdown): nothing may be committed.
        assert!(t.all_commits().is_empty());
        assert_eq!(t.unfinished(), 1);
    }

    #[test]
    fn redelivered_and_unknown_offsets_do_not_move_backwards() {
        let mut t = OffsetTracker::default();
        t.started(&tp(0), 5);
        t.finished(&tp(0), 5);
        assert_eq!(t.take_new_commits(), [(tp(0), 6)]);
        t.started(&tp(0), 4); // redelivered after a rebalance
        t.finished(&tp(0), 4);
        t.finished(&tp(0), 99); // never started
        t.finished(&tp(2), 1); // unknown partition
        assert!(t.take_new_commits().is_empty());
        assert_eq!(t.all_commits(), [(tp(0), 6)]);
    }
}
