//! The future-event list: a min-queue ordered by time, ties broken by insertion order.
//!
//! The sequence number makes the order of simultaneous events a function of the program
//! alone, which is what makes runs reproducible bit for bit.
//!
//! Event times are never negative, so the bits of an `f64` time order like the time itself;
//! time and sequence number are packed into one `u128` key, and the heap compares keys with
//! a single integer comparison (this queue is the hottest structure of the simulator).

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

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Time bits (high 64) then sequence number (low 64): smaller is earlier.
    key: u128,
    ev: Ev,
}

impl Entry {
    #[inline]
    fn time(&self) -> f64 {
        f64::from_bits((self.key >> 64) as u64)
    }
}

/// Below this many events the queue is a plain array scanned for its minimum; from it on,
/// a heap.
const SMALL: usize = 16;
/// Children per heap node: a 4-ary heap is half as deep as a binary one, and a node's
/// children sit side by side in memory, which matters once the queue outgrows the caches.
const ARITY: usize = 4;

/// Min-queue of events.
///
/// Keys are unique (the sequence number), so the order in which events come out is the
/// total order of their keys whatever the layout: small queues (an open source and a few
/// servers, the common case) live in an unsorted array, where a push is an append and a
/// pop a branch-free scan, which beats a heap's unpredictable sifting; a queue that grows
/// past [`SMALL`] becomes a 4-ary heap, and a heap that shrinks to half of it is used as an
/// array again as it stands (any heap is a valid unsorted array).
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    heap: Vec<Entry>,
    seq: u64,
    is_heap: bool,
}

impl EventQueue {
    /// Schedules `ev` at time `t` (a negative or NaN time is taken as 0).
    // Always inlined: built in registers at the call site, the event is stored whole
    // instead of being written to the stack field by field and read back.
    #[inline(always)]
    pub(crate) fn push(&mut self, t: f64, ev: Ev) {
        // `t > 0.0` is false for NaN and for -0.0, whose bits would order wrongly.
        let t = if t > 0.0 { t } else { 0.0 };
        self.seq += 1;
        let key = (u128::from(t.to_bits()) << 64) | u128::from(self.seq);
        if !self.is_heap {
            if self.heap.len() < SMALL {
                self.heap.push(Entry { key, ev });
                return;
            }
            self.heapify();
        }
        let mut i = self.heap.len();
        self.heap.push(Entry { key, ev });
        // Sift up with a hole: move parents down until the new entry's place is found.
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[parent].key <= key {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = Entry { key, ev };
    }

    #[cold]
    fn heapify(&mut self) {
        self.heap.sort_unstable_by_key(|e| e.key); // a sorted array is a heap
        self.is_heap = true;
    }

    /// Index of the earliest event of the array layout (the queue must not be empty).
    #[inline(always)]
    fn min_index(&self) -> usize {
        let mut m = 0;
        let mut mk = u128::MAX;
        for (j, e) in self.heap.iter().enumerate() {
            let lt = e.key < mk;
            mk = if lt { e.key } else { mk };
            m = if lt { j } else { m };
        }
        m
    }

    /// Time of the next event.
    pub(crate) fn peek_time(&self) -> Option<f64> {
        if self.is_heap {
            self.heap.first().map(Entry::time)
        } else {
            self.heap.get(self.min_index()).map(Entry::time)
        }
    }

    /// Removes and returns the next event if it happens at or before `limit`.
    #[inline(always)]
    pub(crate) fn pop_until(&mut self, limit: f64) -> Option<(f64, Ev)> {
        if !self.is_heap {
            if self.heap.is_empty() {
                return None;
            }
            let m = self.min_index();
            let t = self.heap[m].time();
            if t > limit {
                return None;
            }
            let e = self.heap.swap_remove(m);
            return Some((t, e.ev));
        }
        let top = *self.heap.first()?;
        let t = top.time();
        if t > limit {
            return None;
        }
        let last = self.heap.pop()?;
        let n = self.heap.len();
        if n > 0 {
            // Sift the last entry down from the root, one level of four children at a time.
            let mut i = 0;
            loop {
                let first = ARITY * i + 1;
                if first >= n {
                    break;
                }
                let end = (first + ARITY).min(n);
                let mut c = first;
                let mut ck = self.heap[first].key;
                for j in first + 1..end {
                    let k = self.heap[j].key;
                    let lt = k < ck;
                    ck = if lt { k } else { ck };
                    c = if lt { j } else { c };
                }
                if last.key <= ck {
                    break;
                }
                self.heap[i] = self.heap[c];
                i = c;
            }
            self.heap[i] = last;
        }
        if n <= SMALL / 2 {
            self.is_heap = false;
        }
        Some((t, top.ev))
    }

    /// Removes and returns the next event.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<(f64, Ev)> {
        self.pop_until(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_order_and_ties_in_insertion_order() {
        let mut q = EventQueue::default();
        let mut rng = crate::rng::Rng::new(5);
        let mut expected = Vec::new();
        for k in 0..2000u32 {
            // Coarse times so that many ties occur.
            let t = f64::from(rng.below(50)) * 0.25;
            q.push(t, Ev::Chaos { action: k });
            expected.push((t, k));
        }
        expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut got = Vec::new();
        while let Some((t, ev)) = q.pop() {
            let Ev::Chaos { action } = ev else {
                panic!("unexpected {ev:?}")
            };
            got.push((t, action));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn interleaved_pushes_and_pops_match_a_sorted_reference_across_layouts() {
        // Sizes wander between 0 and a few hundred so the queue switches between array
        // and heap, and the heap gets several levels deep.
        let mut q = EventQueue::default();
        let mut reference: Vec<(f64, u32)> = Vec::new();
        let mut rng = crate::rng::Rng::new(8);
        let mut now = 0.0;
        for k in 0..40_000u32 {
            let grow = (k / 2000) % 2 == 0;
            if rng.uniform() < if grow { 0.7 } else { 0.3 } {
                let t = now + f64::from(rng.below(20)) * 0.5;
                q.push(t, Ev::Chaos { action: k });
                reference.push((t, k));
            } else {
                reference.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
                let want = reference.pop();
                let got = q.pop().map(|(t, ev)| match ev {
                    Ev::Chaos { action } => (t, action),
                    _ => (f64::NAN, u32::MAX),
                });
                assert_eq!(got, want, "step {k}");
                if let Some((t, _)) = got {
                    now = t;
                }
            }
        }
    }

    #[test]
    fn pop_until_stops_at_the_limit_and_odd_times_are_clamped() {
        let mut q = EventQueue::default();
        q.push(2.0, Ev::Think { source: 0 });
        q.push(-0.0, Ev::Think { source: 1 });
        q.push(f64::NAN, Ev::Think { source: 2 });
        q.push(1.0, Ev::Think { source: 3 });
        let order: Vec<f64> = std::iter::from_fn(|| q.pop_until(1.5).map(|(t, _)| t)).collect();
        assert_eq!(order, vec![0.0, 0.0, 1.0]);
        assert_eq!(q.peek_time(), Some(2.0));
    }
}
