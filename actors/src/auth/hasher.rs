//! The bcrypt pool: a fixed set of threads (one per core by default) at the lowest CPU
//! priority, fed through a channel.
//!
//! Fixed size: more hashes at once would not finish sooner. Lowest priority (`SCHED_IDLE` on
//! Linux, else nice 19): when logins and token validations compete for the cores, the
//! validations (on the executor threads, normal priority) go first, so a burst of logins
//! cannot push validation latency up, while idle cores still hash at full speed. Never the
//! async executor.

use crate::error::ServiceError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct Hasher {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl Hasher {
    /// Starts `threads` hashing threads; they end when the `Hasher` is dropped.
    pub fn new(threads: usize) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sdsim-bcrypt-{i}"))
                .spawn(move || {
                    lowest_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job must not take the thread with it.
                            Ok(job) => {
                                let _ = catch_unwind(AssertUnwindSafe(job));
                            }
                            Err(_) => return, // the Hasher is gone
                        }
                    }
                })
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Self { tx: Mutex::new(tx) })
    }

    /// Runs `f` on the pool and waits for it without blocking the executor.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = otx.send(f());
        });
        self.tx
            .lock()
            .map_err(|_| ServiceError::Internal("hashing pool poisoned".into()))?
            .send(job)
            .map_err(|_| ServiceError::Unavailable("hashing pool stopped".into()))?;
        orx.await
            .map_err(|_| ServiceError::Internal("hashing job failed".into()))
    }
}

/// Makes the calling thread yield to every other: on Linux `SCHED_IDLE` (it runs only when
/// no normal thread wants the core, and a waking normal thread preempts it at once), else
/// the lowest nice value.
fn lowest_priority() {
    use thread_priority::ThreadPriority;
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        if thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
        .is_ok()
        {
            return;
        }
    }
    if let Err(e) = thread_priority::set_current_thread_priority(ThreadPriority::Min) {
        tracing::debug!(error = ?e, "hashing thread keeps normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        let h = Hasher::new(1).unwrap();
        assert_eq!(h.run(|| 2 + 2).await.unwrap(), 4);
        assert!(h.run(|| -> u32 { panic!("boom") }).await.is_err());
        assert_eq!(h.run(|| "still here").await.unwrap(), "still here");
    }
}
