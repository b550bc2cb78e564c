//! A reliable Redis work queue (the pattern of Redis's `LMOVE` documentation): a worker
//! takes a job by moving it to a processing list, and removes it from there only once it
//! is done, so a worker that dies mid-job loses nothing: the next one to start puts the
//! unfinished jobs back in the queue first. Used by the mail and notification workers.

use redis::aio::ConnectionManager;

/// Takes the oldest job of `queue` into `processing`; `None` when the queue is empty.
pub async fn take(
    conn: &mut ConnectionManager,
    queue: &str,
    processing: &str,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("LMOVE")
        .arg(queue)
        .arg(processing)
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(conn)
        .await
}

/// The job `raw` is done: it leaves the processing list.
pub async fn done(conn: &mut ConnectionManager, processing: &str, raw: &str) {
    let _: redis::RedisResult<i64> = redis::cmd("LREM")
        .arg(processing)
        .arg(1)
        .arg(raw)
        .query_async(conn)
        .await;
}

/// The job `raw` could not be done now: back from `processing` to the head of `queue` (the
/// end `take` takes from), so it is the next one tried. Left where it is if Redis fails
/// (the next start recovers it).
pub async fn retry(conn: &mut ConnectionManager, processing: &str, queue: &str, raw: &str) {
    let _: redis::RedisResult<()> = redis::pipe()
        .atomic()
        .cmd("LREM")
        .arg(processing)
        .arg(1)
        .arg(raw)
        .ignore()
        .cmd("RPUSH")
        .arg(queue)
        .arg(raw)
        .ignore()
        .query_async(conn)
        .await;
}

/// Queues `payload` on `queue` in the background (LPUSH), trying again while Redis is away
/// (0.5 s, doubling, six tries: about half a minute) so a blip loses no job; logs what it
/// gives up. For jobs whose cause is already stored (a share, a run's end), so the caller
/// answers without waiting for Redis.
pub fn push_retrying(conn: ConnectionManager, queue: String, payload: String) {
    tokio::spawn(async move {
        let mut conn = conn;
        let mut wait = std::time::Duration::from_millis(500);
        for attempt in 1..=6 {
            let res: redis::RedisResult<i64> = redis::cmd("LPUSH")
                .arg(&queue)
                .arg(&payload)
                .query_async(&mut conn)
                .await;
            match res {
                Ok(_) => return,
                Err(e) if attempt < 6 => {
                    tracing::warn!(%queue, attempt, error = %e, "job not queued yet (Redis)");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => tracing::error!(%queue, error = %e, "job not queued: Redis stayed away"),
            }
        }
    });
}

/// Puts back in `queue` every job left in `processing` by a worker that died.
pub async fn recover(conn: &mut ConnectionManager, processing: &str, queue: &str) {
    while let Ok(Some(_)) = redis::cmd("LMOVE")
        .arg(processing)
        .arg(queue)
        .arg("LEFT")
        .arg("RIGHT")
        .query_async::<Option<String>>(conn)
        .await
    {}
}
