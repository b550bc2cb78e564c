//! Access tokens made by hand (expired, wrong audience, ...).

/// A correctly signed access token with chosen claims (for expired / wrong-audience tokens).
pub fn forge_token(claims: serde_json::Value, secret: &str, kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn claims_for(login: &serde_json::Value, exp_offset: i64) -> serde_json::Value {
    let now = chrono_now();
    serde_json::json!({
        "sub": login["user"]["id"], "sid": login["session_id"], "email": login["user"]["email"],
        "adm": false, "iat": now - 7200, "nbf": now - 7200, "exp": now + exp_offset,
        "iss": "sdsim-auth", "aud": "sdsim", "jti": uuid::Uuid::new_v4().to_string(),
    })
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
