//! The third generator, for tails at a fixed rate: an open loop written straight on `h2`,
//! the HTTP/2 implementation under tonic, without tonic's channel, tower buffer and hyper
//! dispatch on top. It runs on one thread of its own (a current-thread runtime), sends
//! prebuilt gRPC frames on schedule from a 50 us timerfd ticker, and keeps every call in
//! flight in one task. A call then costs this process about a third less than a tonic
//! client's (35-46 us against 52-54 us here, most of it the kernel's loopback TCP), which
//! leaves more of the two shared cores to the server.
//!
//! Each call is timed from the instant the schedule says it should leave (not from when it
//! actually left), so a generator that falls behind shows up in the tail instead of hiding
//! it. An answer counts only when it is HTTP 200, its DATA is exactly `answer`'s gRPC frame
//! and its trailers say `grpc-status: 0`; anything else is an error.

use crate::{FineTicker, Probe, Stats};
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::{Duration, Instant};

/// Runs the open loop on a thread of its own and waits for it (without blocking the caller's
/// runtime): `rate` calls per second of `probe` for `dur`, over `conns` HTTP/2 connections.
pub async fn open_loop(
    addr: std::net::SocketAddr,
    probe: &Probe,
    rate: u64,
    dur: Duration,
    conns: usize,
) -> Result<Stats, String> {
    let uri: http::Uri = format!("http://{addr}{}", probe.path)
        .parse()
        .map_err(|e| format!("{}: {e}", probe.path))?;
    let (request, expected) = (probe.request.clone(), probe.answer.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("h2-generator".into())
        .spawn(move || {
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("generator runtime: {e}"))
                .and_then(|rt| {
                    rt.block_on(run(addr, uri, request, expected, rate, dur, conns.max(1)))
                });
            let _ = tx.send(out);
        })
        .map_err(|e| format!("generator thread: {e}"))?;
    rx.await
        .map_err(|_| "the generator thread panicked".to_string())?
}

async fn run(
    addr: std::net::SocketAddr,
    uri: http::Uri,
    request: Bytes,
    expected: Bytes,
    rate: u64,
    dur: Duration,
    conns: usize,
) -> Result<Stats, String> {
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        senders.push(send);
    }
    let ticker = FineTicker::new(Duration::from_micros(50)).map_err(|e| format!("timerfd: {e}"))?;
    let total = (rate as f64 * dur.as_secs_f64()) as u64;
    let mut inflight = FuturesUnordered::new();
    let (mut ok, mut errors) = (0usize, 0usize);
    let mut lat = Vec::with_capacity(total as usize);
    let mut sent = 0u64;
    let start = Instant::now();
    loop {
        tokio::select! {
            biased;
            Some((good, took)) = inflight.next() => {
                if good {
                    ok += 1;
                } else {
                    errors += 1;
                }
                lat.push(took);
            }
            _ = ticker.tick(), if sent < total => {
                let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
                while sent < due {
                    let scheduled = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                    let send = &mut senders[sent as usize % conns];
                    sent += 1;
                    match dispatch(send, &uri, &request).await {
                        Some(response) => {
                            let expected = expected.clone();
                            inflight.push(async move {
                                let good = answer(response, &expected).await;
                                (good, scheduled.elapsed())
                            });
                        }
                        None => {
                            errors += 1;
                            lat.push(scheduled.elapsed());
                        }
                    }
                }
            }
            else => break,
        }
    }
    Ok(Stats::merge(
        vec![(ok, errors, lat)],
        start.elapsed().as_secs_f64(),
    ))
}

/// Sends one call (head and the whole request frame) on `send`; None when the connection
/// refuses it.
async fn dispatch(
    send: &mut h2::client::SendRequest<Bytes>,
    uri: &http::Uri,
    request: &Bytes,
) -> Option<h2::client::ResponseFuture> {
    std::future::poll_fn(|cx| send.poll_ready(cx)).await.ok()?;
    let head = http::Request::post(uri.clone())
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a static request head");
    let (response, mut body) = send.send_request(head, false).ok()?;
    body.send_data(request.clone(), true).ok()?;
    Some(response)
}

/// Whether a call's answer is HTTP 200, exactly `expected` as DATA, and `grpc-status: 0`.
async fn answer(response: h2::client::ResponseFuture, expected: &Bytes) -> bool {
    let Ok(response) = response.await else {
        return false;
    };
    if response.status() != http::StatusCode::OK {
        return false;
    }
    let mut body = response.into_body();
    let mut got: Option<Bytes> = None;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else {
            return false;
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        got = Some(match got {
            None => chunk,
            Some(before) => [before, chunk].concat().into(),
        });
    }
    let status = match body.trailers().await {
        Ok(Some(t)) => t.get("grpc-status").map(|v| v.as_bytes() == b"0"),
        _ => None,
    };
    status == Some(true) && got.as_ref() == Some(expected)
}
