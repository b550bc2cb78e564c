//! [`ApiJson`]: the JSON body extractor of the REST API. Unlike actix-web's `Json`, every way
//! a body can be wrong becomes an [`ApiError`] naming what is wrong:
//!
//! - no or another content type: 415 `unsupported_media_type`;
//! - larger than `gateway.max_body_bytes` (declared or streamed): 413 `payload_too_large`;
//! - not JSON: 400 `malformed_json`;
//! - JSON of the wrong shape: 422 `invalid_input` with the JSON path of the field
//!   (`email`, `address.city`, ...).

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// The largest body the JSON extractor accepts; registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(64 * 1024);
        let check = check_headers(req, limit);
        let mut payload = payload.take();
        Box::pin(async move {
            check?;
            let mut buf = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_body",
                        format!("cannot read the request body: {e}"),
                    )
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            parse(&buf).map(ApiJson)
        })
    }
}

/// A query string read into `T`; a wrong value is a 422 naming its parameter in `field`
/// (actix's `web::Query` names none: "invalid digit found in string").
pub struct ApiQuery<T>(pub T);

impl<T> ApiQuery<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ApiQuery<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(query(req.query_string()).map(ApiQuery))
    }
}

/// Reads a query string into `T`, naming the parameter a wrong value was given for.
pub fn query<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let field = if at == "." { "query".to_string() } else { at };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!("query parameter {field}: {}", e.into_inner()),
        )
        .field(field)
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

fn check_headers(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            if essence.is_empty() {
                "the request body must be JSON (Content-Type: application/json)".to_string()
            } else {
                format!("the request body must be JSON (application/json), not {essence}")
            },
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Parses a JSON body into `T`, naming the offending field on a shape error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is empty; a JSON object is required",
        ));
    }
    // serde would read a struct from an array too; the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "the request body must be a JSON object",
            ),
            Err(e) => shape_error(String::new(), e),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        shape_error(path, inner)
    })?;
    de.end().map_err(|e| shape_error(String::new(), e))?;
    Ok(value)
}

fn shape_error(path: String, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        ),
        Category::Data => {
            let text = e.to_string();
            // serde names a missing field in the message, and the path stops at its parent.
            let field = match missing_field(&text) {
                Some(name) if path == "." || path.is_empty() => name.to_string(),
                Some(name) => format!("{path}.{name}"),
                None if path == "." => String::new(),
                None => path,
            };
            let message = strip_position(&text);
            let message = if field.is_empty() {
                message.to_string()
            } else {
                format!("{field}: {message}")
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message).field(field)
        }
    }
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn strip_position(message: &str) -> &str {
    message
        .rsplit_once(" at line ")
        .map(|(m, _)| m)
        .unwrap_or(message)
}

/// `v` as the text a service receives, refused by name past `max` bytes: the text is
/// written back from the parsed value and may be longer than what was sent (`1e15` comes
/// back as `1000000000000000.0`), so a body within the route's limit can still carry a
/// design over the services' limit.
pub fn json_text(v: &serde_json::Value, field: &str, max: usize) -> Result<String, ApiError> {
    let text = v.to_string();
    if text.len() > max {
        return Err(sdsim_runtime::error::ServiceError::invalid(
            field,
            format!(
                "the {field} is {} bytes as JSON; the limit is {max}",
                text.len()
            ),
        )
        .into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        #[serde(default)]
        nested: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn malformed_json_is_400() {
        let e = parse::<Login>(b"{\"email\": ").unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (400, "malformed_json")
        );
        let e = parse::<Login>(b"   ").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = parse::<Login>(br#"{"email":"a","password":"b"} trailing"#).unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse::<Login>(br#"{"email":"a@b.c"}"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.field.as_deref(), Some("password"));
        let e = parse::<Login>(br#"{"email":"a","password":"b","nested":{}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("nested.n"));
    }

    #[test]
    fn mistyped_field_is_named() {
        let e = parse::<Login>(br#"{"email":5,"password":"x"}"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.field.as_deref(), Some("email"));
        assert!(e.message.contains("expected a string"), "{}", e.message);
        let e = parse::<Login>(br#"{"email":"a","password":"b","nested":{"n":-1}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("nested.n"));
        let e = parse::<Login>(b"[1,2]").unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.field, None);
    }

    #[test]
    fn good_body_parses() {
        let l = parse::<Login>(br#"{"email":"a","password":"b","extra":1}"#).unwrap();
        assert_eq!(l.email, "a");
    }

    #[test]
    fn a_bad_query_value_is_named() {
        #[derive(Debug, serde::Deserialize)]
        struct Q {
            page_size: Option<u32>,
            unread: Option<bool>,
        }
        let q: Q = query("page_size=20&unread=true").unwrap();
        assert_eq!((q.page_size, q.unread), (Some(20), Some(true)));
        for (text, field) in [
            ("page_size=abc", "page_size"),
            ("page_size=99999999999", "page_size"),
            ("unread=1", "unread"),
        ] {
            let e = query::<Q>(text).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.field.as_deref()),
                (422, Some(field)),
                "{text}: {e:?}"
            );
            assert!(e.message.contains(field), "{}", e.message);
        }
    }
}
