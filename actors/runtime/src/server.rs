//! Supervised actors that own a listener: a tonic gRPC server or an actix-web HTTP server.
//!
//! Listeners are bound once, before the tree starts (port 0 works), and cloned at each
//! (re)start, so a restarted server serves on the same port and no connection is refused
//! in between by another process grabbing it.

use crate::metrics::Metrics;
use crate::probes::Drain;
use crate::supervision::{ChildHandle, ChildLink, ChildSpec, Restart, StartError};
use actix::prelude::*;
use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

/// Builds a gRPC router at each (re)start.
pub type RouterFactory = Arc<dyn Fn() -> tonic::service::Routes + Send + Sync>;

/// Serves gRPC on a listener until stopped; a server error stops it as a failure.
///
/// The server's connections run on `runtime` when given (the process's multi-threaded gRPC
/// runtime, so RPCs are answered on every core), else on the actor's own runtime. Handlers
/// reach actors through their addresses, which work from any runtime.
pub struct GrpcServer {
    name: String,
    listener: TcpListener,
    routes: RouterFactory,
    timing: Timing,
    drain: Drain,
    runtime: Option<tokio::runtime::Handle>,
    link: ChildLink,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl GrpcServer {
    /// A permanent child serving `routes` on `listener`.
    pub fn child(
        name: &str,
        listener: TcpListener,
        routes: RouterFactory,
        timing: Timing,
        drain: Drain,
        runtime: Option<tokio::runtime::Handle>,
    ) -> ChildSpec {
        let name = name.to_string();
        ChildSpec::worker(name.clone(), Restart::Permanent, move |link| {
            let listener = listener
                .try_clone()
                .map_err(|e| StartError(format!("cannot clone listener: {e}")))?;
            let addr = GrpcServer {
                name: name.clone(),
                listener,
                routes: routes.clone(),
                timing: timing.clone(),
                drain: drain.clone(),
                runtime: runtime.clone(),
                link,
                shutdown: None,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }
}

/// Accepted gRPC connections with `TCP_NODELAY` (tonic ignores its builder's `tcp_nodelay`
/// when given an incoming stream, and without it Nagle holds a small answer back until the
/// peer acknowledges the previous one) and a 60 s TCP keepalive, so a peer that vanished
/// without closing does not hold its connection forever.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(60)))
}

impl Actor for GrpcServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let listener = match self.listener.try_clone().and_then(|l| {
            l.set_nonblocking(true)?;
            Ok(l)
        }) {
            Ok(l) => l,
            Err(e) => {
                self.link.fail(format!("cannot use listener: {e}"));
                ctx.stop();
                return;
            }
        };
        let local = listener.local_addr().ok();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.shutdown = Some(tx);
        let routes = (self.routes)();
        let timing = self.timing.clone();
        // Counted until tonic has finished the requests in flight after its shutdown.
        let serving = self.drain.serving(self.timing.service);
        // Registered with the reactor of whichever runtime serves it, inside that runtime.
        let serve = async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| format!("cannot use listener: {e}"))?;
            let res = tonic::transport::Server::builder()
                .layer(timing)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming(listener), async {
                    let _ = rx.await;
                })
                .await
                .map_err(|e| format!("gRPC server error: {e}"));
            drop(serving);
            res
        };
        tracing::info!(server = %self.name, addr = ?local, "gRPC server listening");
        // Run the server on its own task so it is not tied to this actor's poll loop;
        // watch the task from here.
        let task = match &self.runtime {
            Some(rt) => rt.spawn(serve),
            None => tokio::spawn(serve),
        };
        ctx.spawn(task.into_actor(self).map(|res, act, ctx| {
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => act.link.fail(e),
                Err(e) => act.link.fail(format!("gRPC server task ended: {e}")),
            }
            ctx.stop();
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
crate::impl_supervised!(GrpcServer);

/// The timing layer of every gRPC server: each RPC of the service's own contract is
/// counted in `sdsim_grpc_server_in_flight{service}` while it runs (the load an instance
/// registers) and observed in `sdsim_grpc_server_handled_seconds{service,method,code}` when
/// its answer's head is ready, so a service gets request metrics without code of its own.
/// The standard `grpc.*` services (health, reflection) are not counted.
#[derive(Clone)]
pub struct Timing {
    metrics: Arc<Metrics>,
    pub(crate) service: &'static str,
}

impl Timing {
    pub fn new(metrics: Arc<Metrics>, service: &'static str) -> Self {
        Self { metrics, service }
    }
}

impl<S> tower::Layer<S> for Timing {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed {
            inner,
            timing: self.clone(),
        }
    }
}

/// A service wrapped by [`Timing`].
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
    timing: Timing,
}

impl<S, B, R> tower::Service<http::Request<B>> for Timed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let method = path.rsplit('/').next().unwrap_or_default().to_string();
        // Every log line of the call says which request it serves.
        let id = req
            .headers()
            .get(crate::request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let span = match &id {
            Some(id) => {
                tracing::info_span!("rpc", service = self.timing.service, %method, request_id = %id)
            }
            None => tracing::Span::none(),
        };
        let watch =
            (!path.starts_with("/grpc.")).then(|| RpcWatch::start(&self.timing, method.clone()));
        let inner = {
            let _in = span.enter();
            self.inner.call(req)
        };
        // The handler's own calls carry the id on (`request_id::request`).
        let inner = crate::request_id::within(id, inner);
        TimedFuture { inner, watch, span }
    }
}

/// One RPC being timed: in flight until dropped.
struct RpcWatch {
    timing: Timing,
    method: String,
    start: Instant,
    in_flight: prometheus::IntGauge,
}

impl RpcWatch {
    fn start(timing: &Timing, method: String) -> Self {
        let in_flight = timing
            .metrics
            .grpc_in_flight
            .with_label_values(&[timing.service]);
        in_flight.inc();
        Self {
            timing: timing.clone(),
            method,
            start: Instant::now(),
            in_flight,
        }
    }

    /// The answer's code: `grpc-status` in its head (an error answered at once), else OK.
    fn finish<R>(&self, res: &http::Response<R>) {
        let code = res
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map_or(tonic::Code::Ok, tonic::Code::from);
        let code = match code {
            tonic::Code::Ok => "OK".to_string(),
            other => format!("{other:?}"),
        };
        self.timing
            .metrics
            .grpc_server_seconds
            .with_label_values(&[self.timing.service, &self.method, &code])
            .observe(self.start.elapsed().as_secs_f64());
        tracing::debug!(method = %self.method, %code, "rpc answered");
    }
}

impl Drop for RpcWatch {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Timed`] call.
    pub struct TimedFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<Option<String>, F>,
        watch: Option<RpcWatch>,
        span: tracing::Span,
    }
}

impl<F, R, E> Future for TimedFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _in = this.span.enter();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Some(watch) = this.watch.take() {
            if let Ok(res) = &out {
                watch.finish(res);
            }
        }
        Poll::Ready(out)
    }
}

/// Builds and starts an actix-web server on a listener (called at each (re)start).
pub type HttpFactory =
    Arc<dyn Fn(TcpListener) -> std::io::Result<actix_web::dev::Server> + Send + Sync>;

/// Serves HTTP with actix-web until stopped.
pub struct HttpServer {
    name: String,
    service: String,
    listener: TcpListener,
    factory: HttpFactory,
    drain: Drain,
    link: ChildLink,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl HttpServer {
    /// A permanent child serving `factory`'s app on `listener`, counted in `drain` as a
    /// server of `service` until its in-flight requests have finished.
    pub fn child(
        name: &str,
        service: &str,
        listener: TcpListener,
        factory: HttpFactory,
        drain: Drain,
    ) -> ChildSpec {
        let name = name.to_string();
        let service = service.to_string();
        ChildSpec::worker(name.clone(), Restart::Permanent, move |link| {
            let listener = listener
                .try_clone()
                .map_err(|e| StartError(format!("cannot clone listener: {e}")))?;
            let addr = HttpServer {
                name: name.clone(),
                service: service.clone(),
                listener,
                factory: factory.clone(),
                drain: drain.clone(),
                link,
                handle: None,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }
}

impl Actor for HttpServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let listener = match self.listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                self.link.fail(format!("cannot clone listener: {e}"));
                ctx.stop();
                return;
            }
        };
        let local = listener.local_addr().ok();
        match (self.factory)(listener) {
            Ok(server) => {
                tracing::info!(server = %self.name, addr = ?local, "HTTP server listening");
                self.handle = Some(server.handle());
                // The server runs on a task of its own, not in this actor's context:
                // dropping an actix-web `Server` stops its workers at once, cutting the
                // requests in flight, so it must outlive the actor until its graceful stop
                // is done. `serving` counts it until then.
                let serving = self.drain.serving(&self.service);
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                actix_rt::spawn(async move {
                    let res = server.await;
                    drop(serving);
                    let _ = done_tx.send(res);
                });
                ctx.spawn(done_rx.into_actor(self).map(|res, act, ctx| {
                    if let Ok(Err(e)) = res {
                        act.link.fail(format!("HTTP server error: {e}"));
                    }
                    ctx.stop();
                }));
            }
            Err(e) => {
                self.link.fail(format!("cannot start HTTP server: {e}"));
                ctx.stop();
            }
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(handle) = self.handle.take() {
            // Graceful: in-flight requests finish (up to the server's shutdown timeout);
            // the process waits for the server's `serving` before it stops this arbiter.
            actix_rt::spawn(async move { handle.stop(true).await });
        }
    }
}
crate::impl_supervised!(HttpServer);
