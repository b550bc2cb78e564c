//! The future-event list: a binary heap ordered by time, ties broken by insertion order.
//!
//! The sequence number makes the order of simultaneous events a function of the program
//! alone, which is what makes runs reproducible bit for bit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Something that happens at an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ev {
    /// Next (candidate) arrival of an open source; stale when `generation` moved on.
    Arrival { source: u32, generation: u32 },
    /// A closed-workload user finished thinking and sends a request.
    Think { source: u32 },
    /// A request reaches a component after network latency.
    Deliver { req: u32, node: u32 },
    /// A service ends; stale when the replica crashed since (`epoch` moved on).
    Depart { station: u32, req: u32, epoch: u32 },
    /// A scheduled chaos action starts or ends.
    Chaos { action: u32 },
    /// A random crash of one replica.
    Fail { station: u32 },
    /// The repair of a randomly crashed replica.
    Repair { station: u32 },
}

#[derive(Debug)]
struct Entry {
    t: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Min-queue of events.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl EventQueue {
    #[inline]
    pub(crate) fn push(&mut self, t: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry { t, seq: self.seq, ev });
    }

    /// Time of the next event.
    #[inline]
    pub(crate) fn peek_time(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.t)
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(f64, Ev)> {
        self.heap.pop().map(|e| (e.t, e.ev))
    }
}
