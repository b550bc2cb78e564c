//! The bcrypt pool: a fixed set of threads fed through one queue, so hashing never runs on
//! the async executor.
//!
//! Fixed size (one thread per core by default): more hashes at once would not finish sooner.
//! Two tiers, so that a burst of logins leaves a core to the executor without starving any
//! login:
//! - *first* threads, at normal priority: at most one fewer than the cores (at least one).
//!   They take every job they are free for.
//! - *spare* threads, the rest, [`SPARE_NICE`] nicer than the process on Linux. A spare takes
//!   a job only when no first thread is free for it, so a lone login hashes at normal
//!   priority. A waking executor thread preempts a spare at once; against each busy normal
//!   thread a spare still gets about a tenth of a core, so its hash ends (up to ten times
//!   later) however loaded the machine is.
//!
//! Why: in alternating runs of `BENCH_ONLY=hashing benches/auth/run.sh` (two-core VM, cost
//! 12, 2000 validations/s while 32 logins hash), validation p99 was 5.3-6.9 ms with every
//! thread at normal priority and 3.3-6.0 ms (most runs under 5) with one first and one spare
//! thread, whether the spare ran at nice 10, nice 19 or `SCHED_IDLE`; logins meanwhile ran
//! at 82% of the bcrypt bound. No spare is lower than nice 10: a `SCHED_IDLE` thread can
//! wait forever behind other processes, which would hang its login, and with every thread
//! at `SCHED_IDLE`, nice 19 or nice 10 a login burst stalled the whole process for seconds
//! on one machine (cause not found; not seen on the next one, with the spare alone lowered).
//! On a quieter VM (Linux 6.18, EEVDF) the p99 was 3.1-4.8 ms in 31 of 33 runs with this
//! pool, and moved neither with the first thread also at nice 10 nor with a 100 us
//! scheduler slice for the executor's threads; the load generator at nice -10 brought it to
//! 1.9-3.2 ms, so about half of that tail is the generator's own.

use sdsim_runtime::error::ServiceError;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How much nicer than the process spare hashing threads run.
pub const SPARE_NICE: i32 = 10;

/// A job computes, then hands back how to deliver its result: the pool counts a first thread
/// free again before the caller hears back, so the caller's next job is left to it.
type Job = Box<dyn FnOnce() -> Deliver + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// First threads not computing a job: the jobs a spare must leave to them.
    free_first: usize,
    closed: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("jobs", &self.jobs.len())
            .field("free_first", &self.free_first)
            .field("closed", &self.closed)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock and never panic inside it: a poisoned lock still holds a
        // consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
pub struct Hasher {
    shared: Arc<Shared>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    First,
    Spare,
}

impl Hasher {
    /// The pool for this machine: `threads` in all (0: one per core), of which at most one
    /// fewer than the cores (at least one) at normal priority and the rest spare.
    pub fn for_machine(threads: usize) -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if threads == 0 { cores } else { threads };
        Self::new(threads, threads.min(cores - 1))
    }

    /// Starts `threads` hashing threads, `first` of them (at least one) at normal priority.
    /// They are not joined: once the `Hasher` is dropped they finish the jobs already queued
    /// and end.
    pub fn new(threads: usize, first: usize) -> Result<Self, String> {
        let threads = threads.max(1);
        let first = first.clamp(1, threads);
        // First threads count as free from the start, so that a spare never takes a job
        // only because they have not reached the queue yet.
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                free_first: first,
                ..Queue::default()
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let tier = if i < first { Tier::First } else { Tier::Spare };
            let mine = shared.clone();
            std::thread::Builder::new()
                .name(match tier {
                    Tier::First => format!("sdsim-bcrypt-{i}"),
                    Tier::Spare => format!("sdsim-bcrypt-spare-{i}"),
                })
                .spawn(move || work(&mine, tier))
                .map_err(|e| {
                    // The threads already started end once the pool is closed.
                    drop(Self {
                        shared: shared.clone(),
                    });
                    format!("cannot start a hashing thread: {e}")
                })?;
        }
        Ok(Self { shared })
    }

    /// Runs `f` on the pool and waits for it without blocking the executor.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that has gone (its request cancelled or timed out) costs no hash.
            if otx.is_closed() {
                return Box::new(|| ());
            }
            let out = f();
            Box::new(move || {
                let _ = otx.send(out);
            })
        });
        // The pool cannot be closed here: that takes dropping it, and `self` borrows it.
        self.shared.lock().jobs.push_back(job);
        // Every waiting thread looks: a spare must not take the job a free first one will.
        self.shared.ready.notify_all();
        orx.await
            .map_err(|_| ServiceError::Internal("hashing job failed".into()))
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

/// A hashing thread: takes the jobs its tier may take until the pool closes and drains.
fn work(shared: &Shared, tier: Tier) {
    if tier == Tier::Spare {
        lower_priority();
    }
    let mut q = shared.lock();
    loop {
        // Both tiers serve in order (a spare taking the newest instead made the oldest of 32
        // queued logins wait 9.8 s instead of 6.7 s under load); a spare only takes a job
        // that no free first thread will.
        let may = tier == Tier::First || q.jobs.len() > q.free_first;
        let job = if may { q.jobs.pop_front() } else { None };
        if let Some(job) = job {
            if tier == Tier::First {
                q.free_first -= 1;
            }
            if !q.jobs.is_empty() {
                // Fewer free first threads now: a spare may have to take the rest.
                shared.ready.notify_all();
            }
            drop(q);
            // A panicking job must not take the thread with it.
            let deliver = catch_unwind(AssertUnwindSafe(job)).ok();
            if tier == Tier::First {
                shared.lock().free_first += 1;
            }
            if let Some(deliver) = deliver {
                // Dropping an undelivered result runs its destructor here: a thread already
                // counted free must survive that too.
                let _ = catch_unwind(AssertUnwindSafe(deliver));
            }
            q = shared.lock();
            continue;
        }
        if q.closed && q.jobs.is_empty() {
            // A spare that declined the last jobs waits for news of the drained queue.
            shared.ready.notify_all();
            return;
        }
        q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

/// Spare threads yield to normal ones (Linux: a thread's own nice value; elsewhere they keep
/// normal priority, since `setpriority` there would lower the whole process).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let lowered = getpriority_process(me)
            .and_then(|nice| setpriority_process(me, (nice + SPARE_NICE).min(19)));
        if let Err(e) = lowered {
            tracing::debug!(error = %e, "spare hashing thread keeps normal priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::task::JoinHandle;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        let h = Hasher::new(1, 1).unwrap();
        assert_eq!(h.run(|| 2 + 2).await.unwrap(), 4);
        assert!(h.run(|| -> u32 { panic!("boom") }).await.is_err());
        assert_eq!(h.run(|| "still here").await.unwrap(), "still here");
    }

    #[tokio::test]
    async fn a_free_first_thread_takes_every_job() {
        let h = Hasher::new(2, 1).unwrap();
        for _ in 0..50 {
            assert_eq!(h.run(thread_name).await.unwrap(), "sdsim-bcrypt-0");
        }
    }

    /// Occupies the pool's first thread until the returned sender sends (the task then
    /// answers whether it was released rather than timed out).
    async fn occupy_first(h: &Arc<Hasher>) -> (std::sync::mpsc::Sender<()>, JoinHandle<bool>) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, on_first) = tokio::sync::oneshot::channel();
        let h = h.clone();
        let busy = tokio::spawn(async move {
            h.run(move || {
                let _ = started.send(thread_name());
                hold.recv_timeout(Duration::from_secs(10)).is_ok()
            })
            .await
            .unwrap()
        });
        assert_eq!(on_first.await.unwrap(), "sdsim-bcrypt-0");
        (release, busy)
    }

    #[tokio::test]
    async fn a_spare_takes_what_busy_first_threads_cannot() {
        let h = Arc::new(Hasher::new(2, 1).unwrap());
        let (release, busy) = occupy_first(&h).await;
        let spare = tokio::time::timeout(Duration::from_secs(5), h.run(thread_name))
            .await
            .expect("the spare took the job while the first thread was busy")
            .unwrap();
        assert_eq!(spare, "sdsim-bcrypt-spare-1");
        release.send(()).unwrap();
        assert!(
            busy.await.unwrap(),
            "the busy job was released, not timed out"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn spares_run_at_a_lower_priority_and_first_threads_at_the_callers() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let own = nice().unwrap();
        let h = Arc::new(Hasher::new(2, 1).unwrap());
        assert_eq!(h.run(nice).await.unwrap().unwrap(), own);
        let (release, busy) = occupy_first(&h).await;
        let spare = tokio::time::timeout(
            Duration::from_secs(5),
            h.run(move || (thread_name(), nice())),
        )
        .await
        .expect("the spare took the job while the first thread was busy")
        .unwrap();
        assert_eq!(spare.0, "sdsim-bcrypt-spare-1");
        assert_eq!(spare.1.unwrap(), (own + SPARE_NICE).min(19));
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
    }

    #[tokio::test]
    async fn a_caller_that_has_gone_costs_no_hash() {
        let h = Arc::new(Hasher::new(1, 1).unwrap());
        let (release, busy) = occupy_first(&h).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let job = {
            let ran = ran.clone();
            move || ran.store(true, std::sync::atomic::Ordering::SeqCst)
        };
        // Queued behind the busy thread, then given up on.
        let gave_up = tokio::time::timeout(Duration::from_millis(20), h.run(job)).await;
        assert!(gave_up.is_err());
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        assert_eq!(h.run(|| 1).await.unwrap(), 1); // the queue has moved past it
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn every_thread_ends_once_the_pool_is_dropped_and_drained() {
        // A job queued for a free first thread as the pool closes: the spare declines it and
        // must still hear that the queue has drained.
        for _ in 0..50 {
            let h = Hasher::new(2, 1).unwrap();
            let shared = h.shared.clone();
            shared.lock().jobs.push_back(Box::new(|| Box::new(|| ())));
            drop(h);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&shared) > 1 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "a hashing thread outlived its pool"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    #[tokio::test]
    async fn queued_jobs_finish_after_the_pool_is_dropped() {
        let h = Hasher::new(1, 1).unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = h.shared.clone();
        // Queue two jobs behind a blocked one, then drop the pool.
        let blocker: Job = Box::new(move || {
            let _ = hold.recv_timeout(Duration::from_secs(10));
            Box::new(|| ())
        });
        {
            let mut q = shared.lock();
            q.jobs.push_back(blocker);
            for i in 0..2 {
                let tx = tx.clone();
                q.jobs.push_back(Box::new(move || {
                    tx.send(i).unwrap();
                    Box::new(|| ())
                }));
            }
        }
        shared.ready.notify_all();
        drop(h);
        release.send(()).unwrap();
        let got: Vec<i32> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, vec![0, 1]);
    }
}
