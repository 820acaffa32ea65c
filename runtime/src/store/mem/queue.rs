//! The memory store's due queue: armings taken in (due, seq) order.
//!
//! A replay arms most timers far ahead (60-day timers) and re-arms or
//! cancels many before they come due, so one binary heap over every arming
//! was large, mostly stale entries, and each push and pop walked it with
//! cache misses. Here only the earliest hour reached is a heap; later
//! armings wait unsorted in per-hour buckets (a push is a `Vec::push`) and
//! an hour is heapified when the queue gets there. Stale entries are still
//! dropped lazily by the store when they surface, but they never sit in the
//! heap that is being popped.

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Width of a bucket, in seconds.
const BUCKET: i64 = 3600;

/// One arming. Ordered by due instant, then arming sequence (unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Entry {
    pub due: DateTime<Utc>,
    pub seq: i64,
    /// The record's index in the store (its id - 1).
    pub index: u32,
}

#[derive(Default)]
pub(super) struct DueQueue {
    /// Every entry of the buckets up to `horizon`.
    near: BinaryHeap<Reverse<Entry>>,
    /// The last bucket moved into `near`; None until the first.
    horizon: Option<i64>,
    /// Entries of the buckets after `horizon`, unsorted.
    later: BTreeMap<i64, Vec<Reverse<Entry>>>,
}

fn bucket(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(BUCKET)
}

impl DueQueue {
    pub fn push(&mut self, e: Entry) {
        let b = bucket(e.due);
        match self.horizon {
            Some(h) if b <= h => self.near.push(Reverse(e)),
            _ => self.later.entry(b).or_default().push(Reverse(e)),
        }
    }

    /// The earliest entry.
    pub fn peek(&mut self) -> Option<Entry> {
        if self.near.is_empty() {
            let (b, list) = self.later.pop_first()?;
            self.horizon = Some(b);
            self.near = BinaryHeap::from(list);
        }
        self.near.peek().map(|e| e.0)
    }

    /// Remove the earliest entry.
    pub fn pop(&mut self) -> Option<Entry> {
        self.peek()?;
        self.near.pop().map(|e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    /// Same order as one binary heap, with pushes before, at and after the
    /// entries being taken (a timer armed in the past comes out first).
    #[test]
    fn same_order_as_a_heap() {
        let t0: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let mut q = DueQueue::default();
        let mut reference = BinaryHeap::new();
        let mut x: u64 = 42;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let mut now = t0;
        for seq in 0..20_000 {
            // Seconds from 2 days before the clock to 60 days after it;
            // many equal instants.
            let off = next(62 * 86_400) as i64 - 2 * 86_400;
            let e = Entry {
                due: now + Duration::seconds(off - off % 600),
                seq,
                index: next(100) as u32,
            };
            q.push(e);
            reference.push(Reverse(e));
            for _ in 0..next(3) {
                let got = q.pop();
                assert_eq!(got, reference.pop().map(|e| e.0));
                if let Some(e) = got {
                    now = now.max(e.due);
                }
            }
            assert_eq!(q.peek(), reference.peek().map(|e| e.0));
        }
        while let Some(e) = reference.pop() {
            assert_eq!(q.pop(), Some(e.0));
        }
        assert_eq!(q.pop(), None);
    }
}
