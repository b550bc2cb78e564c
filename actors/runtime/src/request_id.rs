//! The request id of a call, carried across hops so every log line of one request can be
//! found: the gateway takes `X-Request-Id` (or makes one), answers with it, and runs the
//! request's handler inside [`scope`]; gRPC calls made there carry it as `x-request-id`
//! metadata ([`request`]); every gRPC server logs inside a span holding it
//! (`server::Timing`).

use std::future::Future;

/// The metadata key and HTTP header.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: Option<String>;
}

/// Runs `fut` as part of request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(Some(id), fut).await
}

/// `fut` as part of request `id`, if any (a gRPC server's handler).
pub fn within<F: Future>(
    id: Option<String>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Option<String>, F> {
    REQUEST_ID.scope(id, fut)
}

/// The current request's id, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// A request id a client may send: 1 to 128 visible ASCII characters; else one is made.
pub fn accept(given: Option<&str>) -> String {
    given
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// `msg` as a gRPC request carrying the current request id.
pub fn request<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(id) = current() {
        if let Ok(v) = tonic::metadata::MetadataValue::try_from(id.as_str()) {
            req.metadata_mut().insert(HEADER, v);
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_accepted_or_made() {
        assert_eq!(accept(Some("abc-1")), "abc-1");
        assert_eq!(accept(Some("  ")).len(), 36);
        assert_eq!(accept(Some("has space")).len(), 36);
        assert_eq!(accept(Some(&"x".repeat(129))).len(), 36);
        assert_eq!(accept(None).len(), 36);
    }

    #[tokio::test]
    async fn a_call_in_scope_carries_it() {
        assert!(request(()).metadata().get(HEADER).is_none());
        let r = scope("r-1".into(), async { request(()) }).await;
        assert_eq!(r.metadata().get(HEADER).unwrap(), "r-1");
    }
}
