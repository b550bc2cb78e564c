//! A pool of tonic channels (HTTP/2 connections) to one target instance.
//!
//! A call takes a [`Permit`] on the first channel with room: a channel carries at most
//! `concurrency` calls at once, the next channel takes the calls past that, and past every
//! channel callers queue (and the queue is measured). The pool only counts; its
//! [`super::scaler::Scaler`] reads the counters and decides its size.
//!
//! Calls fill one channel before the next, not spread over all of them: HTTP/2 multiplexes,
//! so concurrent calls on one connection share its reads and writes (one `writev` carries
//! several calls' frames), while the same calls spread over 20 connections cost a system call
//! each on both sides, on loopback nearly all of a call's cost. Measured with
//! `benches/gateway/run.sh` (2 cores, 32 connections): the authenticated read went from
//! about 3,900 to 5,300-5,600 requests/s. The extra channels the scaler keeps are spares: a
//! call goes there when the first ones are full or gone.
//!
//! A channel's own tasks (tonic's buffer, the HTTP/2 connection) run where it was made: the
//! gRPC runtime for the pool's channels. A caller on a single-threaded runtime (an actix-web
//! worker, an actor's arbiter) would hand every call over to that runtime's threads and be
//! woken from there, two thread hand-offs per call. So a lane also holds one connection per
//! such thread, made on first use on the caller's own runtime: the call is written, read and
//! answered on the thread that made it. A lane is still one slot of the global channel
//! budget; its connections are one per calling thread (the workers and arbiters, a handful;
//! at most [`MAX_LOCAL`]), each dropped once its thread exits or its runtime ends.
//! Measured with `benches/gateway/run.sh` (2 cores, 32 connections, alternating builds):
//! the authenticated read went from 4,921-5,126 to 6,601-6,833 requests/s, its p99 from
//! 12.1-12.2 to 8.9-9.4 ms.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

pub struct Lane {
    channel: Channel,
    in_flight: AtomicUsize,
    /// What the per-thread connections are made from; none, none are made.
    endpoint: Option<Endpoint>,
    local: RwLock<Vec<Local>>,
}

/// A lane's connection for the callers on one single-threaded runtime.
struct Local {
    thread: ThreadId,
    channel: Channel,
    /// A task that never ends on the runtime the channel's tasks run on: finished once that
    /// runtime is gone (and the channel with it), so a new runtime on the same thread gets
    /// a new channel.
    alive: JoinHandle<()>,
    /// Cleared when the thread exits (a thread of a blocking pool, say, whose runtime lives
    /// on): its entry is dropped at the next insertion instead of kept for good.
    thread_alive: Arc<AtomicBool>,
}

impl Local {
    fn live(&self) -> bool {
        !self.alive.is_finished() && self.thread_alive.load(Ordering::Acquire)
    }
}

/// Per-thread connections a lane makes at most; past it, callers share the lane's channel.
const MAX_LOCAL: usize = 64;

/// Set while this thread lives; cleared by the thread-local's destructor at its exit.
struct ThreadAlive(Arc<AtomicBool>);

impl Drop for ThreadAlive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

thread_local! {
    static THREAD_ALIVE: ThreadAlive = ThreadAlive(Arc::new(AtomicBool::new(true)));
}

impl Drop for Local {
    fn drop(&mut self) {
        self.alive.abort();
    }
}

impl Lane {
    /// This thread's own connection when the caller runs on a single-threaded runtime.
    fn local(&self) -> Option<Channel> {
        let endpoint = self.endpoint.as_ref()?;
        let runtime = Handle::try_current().ok()?;
        if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        let me = std::thread::current().id();
        let mine = |l: &&Local| l.thread == me && l.live();
        if let Some(l) = self.local.read().ok()?.iter().find(mine) {
            return Some(l.channel.clone());
        }
        let thread_alive = THREAD_ALIVE.try_with(|a| a.0.clone()).ok()?;
        let mut all = self.local.write().ok()?;
        all.retain(|l| l.live());
        if let Some(l) = all.iter().find(mine) {
            return Some(l.channel.clone());
        }
        if all.len() >= MAX_LOCAL {
            return None;
        }
        let alive = runtime.spawn(std::future::pending());
        if alive.is_finished() {
            // The runtime is shutting down: no connection of its own now.
            return None;
        }
        // Made here, so its tasks are spawned on this thread's runtime.
        let channel = endpoint.clone().connect_lazy();
        all.push(Local {
            thread: me,
            channel: channel.clone(),
            alive,
            thread_alive,
        });
        Some(channel)
    }
}

/// Counters since the pool was made; the scaler turns deltas into rates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub calls: u64,
    pub errors: u64,
    pub latency_us: u64,
}

pub struct Pool {
    lanes: RwLock<Vec<Arc<Lane>>>,
    /// The target's address, for the lanes' per-thread connections.
    endpoint: Option<Endpoint>,
    concurrency: usize,
    notify: Notify,
    waiting: AtomicUsize,
    calls: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
}

/// Why no channel could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoChannel {
    /// The pool has no channel (the global cap refused every one, or it is being closed).
    Empty,
    /// Every channel stayed busy until the deadline.
    Timeout,
}

/// One call's hold on a channel; released when dropped.
pub struct Permit {
    lane: Arc<Lane>,
    pool: Arc<Pool>,
}

impl Permit {
    /// The lane's connection for this thread if it has its own, else the shared one.
    pub fn channel(&self) -> Channel {
        self.lane
            .local()
            .unwrap_or_else(|| self.lane.channel.clone())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.lane.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.pool.waiting.load(Ordering::Acquire) > 0 {
            self.pool.notify.notify_one();
        }
    }
}

impl Pool {
    /// A pool whose lanes make per-thread connections from `endpoint`, if given.
    pub fn new(concurrency: usize, endpoint: Option<Endpoint>) -> Arc<Self> {
        Arc::new(Self {
            lanes: RwLock::new(Vec::new()),
            endpoint,
            concurrency: concurrency.max(1),
            notify: Notify::new(),
            waiting: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.lanes.read().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn add(&self, channel: Channel) {
        if let Ok(mut l) = self.lanes.write() {
            l.push(Arc::new(Lane {
                channel,
                in_flight: AtomicUsize::new(0),
                endpoint: self.endpoint.clone(),
                local: RwLock::new(Vec::new()),
            }));
        }
        self.notify.notify_waiters();
    }

    /// Drops the least-busy channel (calls already on it finish on their own handle).
    pub fn remove_one(&self) -> bool {
        let Ok(mut l) = self.lanes.write() else {
            return false;
        };
        let Some((i, _)) = l
            .iter()
            .enumerate()
            .min_by_key(|(_, lane)| lane.in_flight.load(Ordering::Relaxed))
        else {
            return false;
        };
        l.swap_remove(i);
        true
    }

    pub(crate) fn channel_at(&self, i: usize) -> Option<Channel> {
        self.lanes.read().ok()?.get(i).map(|l| l.channel.clone())
    }

    pub fn clear(&self) {
        if let Ok(mut l) = self.lanes.write() {
            l.clear();
        }
        self.notify.notify_waiters();
    }

    pub fn in_flight(&self) -> usize {
        self.lanes
            .read()
            .map(|l| l.iter().map(|x| x.in_flight.load(Ordering::Relaxed)).sum())
            .unwrap_or(0)
    }

    pub fn queue(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// In-flight calls over what the channels carry at once.
    pub fn utilisation(&self) -> f64 {
        let Ok(l) = self.lanes.read() else {
            return 0.0;
        };
        if l.is_empty() {
            return 0.0;
        }
        let busy: usize = l.iter().map(|x| x.in_flight.load(Ordering::Relaxed)).sum();
        busy as f64 / (l.len() * self.concurrency) as f64
    }

    /// Load for routing: calls in flight and waiting, per channel.
    pub fn load(&self) -> f64 {
        let n = self.len();
        if n == 0 {
            return f64::INFINITY;
        }
        (self.in_flight() + self.queue()) as f64 / n as f64
    }

    fn try_take(self: &Arc<Self>) -> Result<Permit, NoChannel> {
        let l = self.lanes.read().map_err(|_| NoChannel::Empty)?;
        // The first channel with room, in the order they were added; the least loaded only
        // when every one is full (then the claim below fails and the caller queues).
        let lane = l
            .iter()
            .find(|x| x.in_flight.load(Ordering::Relaxed) < self.concurrency)
            .or_else(|| l.iter().min_by_key(|x| x.in_flight.load(Ordering::Relaxed)))
            .ok_or(NoChannel::Empty)?;
        // Claim a slot; give it back if another caller got there first.
        if lane.in_flight.fetch_add(1, Ordering::AcqRel) < self.concurrency {
            return Ok(Permit {
                lane: lane.clone(),
                pool: self.clone(),
            });
        }
        lane.in_flight.fetch_sub(1, Ordering::AcqRel);
        Err(NoChannel::Timeout)
    }

    /// A permit on the first channel with room, waiting (in the measured queue) until
    /// `deadline`.
    pub async fn acquire(self: &Arc<Self>, deadline: Instant) -> Result<Permit, NoChannel> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_take() {
                Ok(p) => return Ok(p),
                Err(NoChannel::Empty) => return Err(NoChannel::Empty),
                Err(NoChannel::Timeout) => {}
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let woke = tokio::time::timeout_at(deadline.into(), notified).await;
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            if woke.is_err() {
                return Err(NoChannel::Timeout);
            }
        }
    }

    /// The outcome of one call on this pool.
    pub fn record(&self, failed: bool, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn counters(&self) -> Counters {
        Counters {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::transport::Endpoint;

    fn lazy() -> Channel {
        Endpoint::from_static("http://127.0.0.1:1").connect_lazy()
    }

    #[tokio::test]
    async fn callers_fill_one_channel_then_the_next_then_queue_and_are_woken() {
        let pool = Pool::new(2, None);
        pool.add(lazy());
        pool.add(lazy());
        let far = Instant::now() + Duration::from_secs(5);
        let a = pool.acquire(far).await.unwrap();
        let b = pool.acquire(far).await.unwrap();
        // The first channel fills before the second carries anything.
        let on = |i: usize| {
            pool.lanes.read().unwrap()[i]
                .in_flight
                .load(Ordering::Relaxed)
        };
        assert_eq!((on(0), on(1)), (2, 0));
        let c = pool.acquire(far).await.unwrap();
        assert_eq!((on(0), on(1)), (2, 1));
        let _d = pool.acquire(far).await.unwrap();
        assert_eq!(pool.in_flight(), 4);
        assert!((pool.utilisation() - 1.0).abs() < 1e-9);
        // Full: the next caller waits in the queue until a permit is dropped.
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move { p2.acquire(far).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.queue(), 1);
        drop(a);
        let _w = waiter.await.unwrap().unwrap();
        assert_eq!(pool.queue(), 0);
        // A caller that cannot get one before its deadline is told so.
        let soon = Instant::now() + Duration::from_millis(30);
        assert_eq!(pool.acquire(soon).await.err(), Some(NoChannel::Timeout));
        drop((b, c));
        assert_eq!(pool.in_flight(), 2);
    }

    #[test]
    fn each_single_threaded_runtime_gets_its_own_connection_and_a_gone_one_is_replaced() {
        let endpoint = Endpoint::from_static("http://127.0.0.1:1");
        let pool = Pool::new(4, Some(endpoint));
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let far = Instant::now() + Duration::from_secs(5);
        let permit = multi.block_on(async {
            pool.add(lazy());
            let p = pool.acquire(far).await.unwrap();
            // A caller on a multi-threaded runtime uses the shared connection.
            let _ = p.channel();
            p
        });
        let locals = || pool.lanes.read().unwrap()[0].local.read().unwrap().len();
        assert_eq!(locals(), 0);
        let single = || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        };
        let first = single();
        first.block_on(async {
            let _ = permit.channel();
            let _ = permit.channel();
        });
        assert_eq!(locals(), 1, "one per thread, made once");
        drop(first);
        // A new runtime on the same thread: the old connection went with its runtime.
        let second = single();
        second.block_on(async {
            let _ = permit.channel();
        });
        assert_eq!(locals(), 1, "the dead one is replaced, not kept");
        let lane = pool.lanes.read().unwrap()[0].clone();
        let alive = || {
            lane.local
                .read()
                .unwrap()
                .iter()
                .all(|l| !l.alive.is_finished())
        };
        assert!(alive());
        // A thread that uses the runtime of another (as a blocking-pool thread would): its
        // own connection, dropped once the thread has exited.
        let handle = second.handle().clone();
        let on_another_thread = || {
            std::thread::scope(|s| {
                let t = s.spawn(|| {
                    let _on = handle.enter();
                    drop(permit.channel());
                });
                // A real join: the thread's exit (and its thread-locals' end) is complete.
                t.join().unwrap();
            })
        };
        let dead = || {
            lane.local
                .read()
                .unwrap()
                .iter()
                .filter(|l| !l.live())
                .count()
        };
        on_another_thread();
        assert_eq!(
            (locals(), dead()),
            (2, 1),
            "the exited thread's entry is seen as dead"
        );
        on_another_thread();
        assert_eq!(
            (locals(), dead()),
            (2, 1),
            "and dropped at the next insertion"
        );
        drop(second);
        assert!(!alive(), "a runtime's end is seen");
        drop(permit);
        // The lane leaves the pool: its connections go with it.
        assert!(pool.remove_one());
        drop(multi);
        assert_eq!(Arc::strong_count(&lane), 1);
    }

    #[tokio::test]
    async fn an_empty_pool_says_so_and_removal_keeps_calls_running() {
        let pool = Pool::new(4, None);
        let far = Instant::now() + Duration::from_secs(1);
        assert_eq!(pool.acquire(far).await.err(), Some(NoChannel::Empty));
        pool.add(lazy());
        let held = pool.acquire(far).await.unwrap();
        assert!(pool.remove_one());
        assert!(pool.is_empty());
        let _still_usable = held.channel();
        drop(held);
        assert_eq!(pool.in_flight(), 0);
        pool.record(true, Duration::from_millis(2));
        pool.record(false, Duration::from_millis(4));
        assert_eq!(
            pool.counters(),
            Counters {
                calls: 2,
                errors: 1,
                latency_us: 6_000
            }
        );
    }
}
