//! The middleware of [`crate::limits`]: every `/api/` request counts against its address
//! before any work (past the limit: 429 at once), and the answer carries the tightest
//! standing (the address's, or the user's counted by `AuthUser`) as `RateLimit-*` headers.
//! It also keeps the operator endpoints (`/metrics`, `/admin/*`) to the peers of
//! `gateway.operator_networks`: anyone else finds nothing there (404).

use super::extract::ClientOrigin;
use crate::error::ApiError;
use crate::limits::{tightest, Limiter, Standing};
use crate::settings::GatewaySettings;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::HttpMessage;
use futures_util::future::LocalBoxFuture;
use std::future::{ready, Ready};
use std::rc::Rc;

pub struct Throttle {
    pub limiter: Limiter,
    pub settings: GatewaySettings,
}

impl<S, B> Transform<S, ServiceRequest> for Throttle
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = ThrottleService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ThrottleService {
            service: Rc::new(service),
            limiter: self.limiter.clone(),
            settings: Rc::new(self.settings.clone()),
        }))
    }
}

pub struct ThrottleService<S> {
    service: Rc<S>,
    limiter: Limiter,
    settings: Rc<GatewaySettings>,
}

/// An operator endpoint of the gateway's HTTP port (health and readiness stay open: load
/// balancers ask them).
fn operator_path(path: &str) -> bool {
    path == "/metrics" || path == "/admin" || path.starts_with("/admin/")
}

impl<S, B> Service<ServiceRequest> for ThrottleService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let path = req.match_info().as_str();
        if operator_path(path) {
            // The client: the TCP peer, or behind a trusted proxy the address it forwards
            // (a proxy on a private network must not make every client an operator).
            let client = ClientOrigin::of(req.request(), &self.settings).ip;
            let allowed = client.parse().is_ok_and(|ip| self.settings.is_operator(ip));
            if !allowed {
                let res = ApiError::route_not_found(path).error_response_json();
                return Box::pin(ready(Ok(req.into_response(res).map_into_right_body())));
            }
        }
        let service = self.service.clone();
        let limiter = self.limiter.clone();
        let address = req
            .match_info()
            .as_str()
            .starts_with("/api/")
            .then(|| ClientOrigin::of(req.request(), &self.settings).ip);
        Box::pin(async move {
            let by_address = match address {
                Some(a) => limiter.address(&a).await,
                None => None,
            };
            if let Some(s) = by_address.filter(Standing::exceeded) {
                let err = ApiError::from(sdsim_runtime::error::ServiceError::RateLimited {
                    retry_after_secs: s.reset.max(1),
                });
                let mut res = actix_web::ResponseError::error_response(&err);
                rate_headers(res.headers_mut(), s);
                return Ok(req.into_response(res).map_into_right_body());
            }
            let mut res = service.call(req).await?;
            let by_user = res.request().extensions().get::<Standing>().copied();
            if let Some(s) = tightest(by_address, by_user) {
                rate_headers(res.headers_mut(), s);
            }
            Ok(res.map_into_left_body())
        })
    }
}

/// The IETF draft's `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
fn rate_headers(h: &mut HeaderMap, s: Standing) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(s.limit)),
        ("ratelimit-remaining", u64::from(s.remaining)),
        ("ratelimit-reset", s.reset),
    ] {
        h.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn operator_paths_are_metrics_and_admin() {
        for p in [
            "/metrics",
            "/admin",
            "/admin/mesh",
            "/admin/supervision/a/b/crash",
        ] {
            assert!(super::operator_path(p), "{p}");
        }
        for p in [
            "/health",
            "/readyz",
            "/livez",
            "/api/admin/users",
            "/administrator",
            "/metricsx",
        ] {
            assert!(!super::operator_path(p), "{p}");
        }
    }
}
