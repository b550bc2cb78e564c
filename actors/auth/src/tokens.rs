//! Access tokens (JWT, HS256 with a `kid`) and refresh tokens (random, stored hashed).

use crate::settings::AuthSettings;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sdsim_runtime::error::ServiceError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    /// Session id: revoking the session revokes the token.
    pub sid: String,
    pub email: String,
    pub adm: bool,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
}

pub struct TokenService {
    encoding: EncodingKey,
    /// The current key and every previous (not yet retired) key, by `kid`.
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    /// Tokens that passed every check. Signature, algorithm, key, issuer and audience are a
    /// function of the token's exact text and of keys fixed for this service's life, so a
    /// token seen again only has its time claims checked again (as Envoy's JWT cache does).
    verified: VerifiedTokens,
    leeway: u64,
    key_id: String,
    issuer: String,
    audience: String,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    pub fn new(settings: &AuthSettings, secret: &[u8]) -> Self {
        // The algorithm is fixed here; a token claiming any other (including `none`) fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_seconds;
        let mut decoding = HashMap::new();
        for k in &settings.previous_keys {
            decoding.insert(
                k.kid.clone(),
                DecodingKey::from_secret(k.secret.expose().as_bytes()),
            );
        }
        decoding.insert(
            settings.jwt_key_id.clone(),
            DecodingKey::from_secret(secret),
        );
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding,
            validation,
            verified: VerifiedTokens::new(VERIFIED_CAPACITY),
            leeway: settings.leeway_seconds,
            key_id: settings.jwt_key_id.clone(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl_seconds,
            refresh_ttl: settings.refresh_ttl_seconds,
        }
    }

    /// Signs an access token for a session; returns it and its expiry.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        email: &str,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), ServiceError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            email: email.to_string(),
            adm: is_admin,
            iat,
            nbf: iat,
            exp: iat + self.access_ttl,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        let token = encode(&header, &claims, &self.encoding)
            .map_err(|e| ServiceError::Internal(format!("cannot sign token: {e}")))?;
        Ok((token, claims.exp))
    }

    /// Checks signature, algorithm, `kid`, `exp`, `nbf`, `iss` and `aud`. Says why it refuses.
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, ServiceError> {
        if token.is_empty() {
            return Err(ServiceError::unauthenticated(
                "token_missing",
                "no token given",
            ));
        }
        if token.len() > 8 * 1024 {
            return Err(ServiceError::unauthenticated(
                "token_malformed",
                "token is too long",
            ));
        }
        if let Some(hit) = self.verified.get(token) {
            let now = jsonwebtoken::get_current_timestamp();
            return match self.expired_or_early(hit.exp, hit.nbf, now) {
                Some(e) => {
                    self.verified.forget(token);
                    Err(e)
                }
                None => Ok(hit.claims),
            };
        }
        let claims = Arc::new(self.verify_fully(token)?);
        self.verified.remember(
            token,
            claims.clone(),
            jsonwebtoken::get_current_timestamp(),
            self.leeway,
        );
        Ok(claims)
    }

    /// The time checks `verify_fully` makes (jsonwebtoken's), with the same leeway and the
    /// same answers.
    fn expired_or_early(&self, exp: u64, nbf: u64, now: u64) -> Option<ServiceError> {
        if past(exp, now, self.leeway) {
            Some(ServiceError::unauthenticated(
                "token_expired",
                "token has expired",
            ))
        } else if nbf > now.saturating_add(self.leeway) {
            Some(ServiceError::unauthenticated(
                "token_not_yet_valid",
                "token is not valid yet",
            ))
        } else {
            None
        }
    }

    /// How many verified tokens are remembered.
    pub fn remembered(&self) -> usize {
        self.verified.len()
    }

    fn verify_fully(&self, token: &str) -> Result<Claims, ServiceError> {
        use jsonwebtoken::errors::ErrorKind as K;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ServiceError::unauthenticated("token_malformed", "token is malformed"))?;
        if header.alg != Algorithm::HS256 {
            return Err(ServiceError::unauthenticated(
                "token_bad_algorithm",
                "token is signed with an algorithm this server does not accept",
            ));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or_else(|| {
                ServiceError::unauthenticated(
                    "token_unknown_key",
                    "token is signed with an unknown or retired key",
                )
            })?;
        decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let (code, msg) = match e.kind() {
                    K::ExpiredSignature => ("token_expired", "token has expired"),
                    K::ImmatureSignature => ("token_not_yet_valid", "token is not valid yet"),
                    K::InvalidSignature => ("token_bad_signature", "token signature is invalid"),
                    K::InvalidAudience => ("token_bad_audience", "token is for another audience"),
                    K::InvalidIssuer => ("token_bad_issuer", "token is from another issuer"),
                    K::InvalidAlgorithm => (
                        "token_bad_algorithm",
                        "token is signed with an algorithm this server does not accept",
                    ),
                    K::MissingRequiredClaim(_) => {
                        ("token_malformed", "token lacks a required claim")
                    }
                    _ => ("token_malformed", "token is malformed"),
                };
                ServiceError::unauthenticated(code, msg)
            })
    }
}

/// At most this many verified tokens are remembered (1-1.5 KiB each).
const VERIFIED_CAPACITY: usize = 16 * 1024;

/// Whether a token expiring at `exp` has expired at `now` (as jsonwebtoken decides).
fn past(exp: u64, now: u64, leeway: u64) -> bool {
    exp < now.saturating_sub(leeway)
}

/// Tokens that passed every check. An entry is found by a keyed hash of the token computed
/// before the lock is taken (a long junk token costs its caller, not everyone), and the
/// token's text is compared on a hit, so another token never answers for it.
struct VerifiedTokens {
    keys: std::hash::RandomState,
    map: Mutex<VerifiedMap>,
    capacity: usize,
}

/// Verified tokens by the keyed hash of their text.
type VerifiedMap = HashMap<u64, Verified, std::hash::BuildHasherDefault<Prehashed>>;

#[derive(Clone)]
struct Verified {
    token: Arc<str>,
    claims: Arc<Claims>,
    exp: u64,
    nbf: u64,
}

/// The hasher of a map whose keys are already hashes.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl VerifiedTokens {
    fn new(capacity: usize) -> Self {
        Self {
            keys: std::hash::RandomState::new(),
            map: Mutex::new(HashMap::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VerifiedMap> {
        // The map holds no invariant a panicking holder could break halfway.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The map's key for `token`, computed without the lock.
    fn key(&self, token: &str) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(token)
    }

    fn get(&self, token: &str) -> Option<Verified> {
        let key = self.key(token);
        self.lock()
            .get(&key)
            .filter(|v| &*v.token == token)
            .cloned()
    }

    fn forget(&self, token: &str) {
        let key = self.key(token);
        let gone = {
            let mut map = self.lock();
            match map.get(&key) {
                Some(v) if &*v.token == token => map.remove(&key),
                _ => None,
            }
        };
        drop(gone);
    }

    /// Remembers a verified token. When full, drops the expired ones and then any others
    /// down to half the capacity, so a full map is swept once per `capacity / 2` tokens;
    /// what is dropped is freed after the lock is released.
    fn remember(&self, token: &str, claims: Arc<Claims>, now: u64, leeway: u64) {
        let (Ok(exp), Ok(nbf)) = (u64::try_from(claims.exp), u64::try_from(claims.nbf)) else {
            return;
        };
        let key = self.key(token);
        let entry = Verified {
            token: token.into(),
            claims,
            exp,
            nbf,
        };
        let dropped = {
            let mut map = self.lock();
            let mut dropped = Vec::new();
            if map.len() >= self.capacity {
                let old = std::mem::take(&mut *map);
                dropped.reserve(old.len() / 2);
                for (k, v) in old {
                    if map.len() < self.capacity / 2 && !past(v.exp, now, leeway) {
                        map.insert(k, v);
                    } else {
                        dropped.push(v);
                    }
                }
            }
            map.insert(key, entry);
            dropped
        };
        drop(dropped);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A fresh refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores instead of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            leeway_seconds: 0,
            ..AuthSettings::default()
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_token_verifies() {
        let ts = TokenService::new(&settings(), SECRET);
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        let (tok, exp) = ts.issue(u, s, "a@b.co", false, Utc::now()).unwrap();
        let c = ts.verify(&tok).unwrap();
        assert_eq!(c.sub, u.to_string());
        assert_eq!(c.sid, s.to_string());
        assert_eq!(c.exp, exp);
    }

    fn code(r: Result<Arc<Claims>, ServiceError>) -> String {
        r.unwrap_err().code().to_string()
    }

    #[test]
    fn refuses_expired_future_tampered_foreign_and_none() {
        let ts = TokenService::new(&settings(), SECRET);
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        let old = Utc::now() - chrono::Duration::hours(2);
        let (tok, _) = ts.issue(u, s, "a@b.co", false, old).unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_expired");

        let future = Utc::now() + chrono::Duration::hours(1);
        let (tok, _) = ts.issue(u, s, "a@b.co", false, future).unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_not_yet_valid");

        let (tok, _) = ts.issue(u, s, "a@b.co", false, Utc::now()).unwrap();
        let mut parts: Vec<String> = tok.split('.').map(str::to_string).collect();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap();
        let tampered = String::from_utf8(claims)
            .unwrap()
            .replace("\"adm\":false", "\"adm\":true");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered);
        assert_eq!(code(ts.verify(&parts.join("."))), "token_bad_signature");

        let other = TokenService::new(&settings(), b"another-secret-another-secret-xx");
        let (tok, _) = other.issue(u, s, "a@b.co", false, Utc::now()).unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_bad_signature");

        let mut aud = settings();
        aud.audience = "elsewhere".into();
        let (tok, _) = TokenService::new(&aud, SECRET)
            .issue(u, s, "a@b.co", false, Utc::now())
            .unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_bad_audience");

        let mut iss = settings();
        iss.issuer = "mallory".into();
        let (tok, _) = TokenService::new(&iss, SECRET)
            .issue(u, s, "a@b.co", false, Utc::now())
            .unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_bad_issuer");

        // alg: none with the right kid
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            parts[1]
        );
        assert!(ts.verify(&none).is_err());
        assert_eq!(code(ts.verify("not.a.jwt")), "token_malformed");
        assert_eq!(code(ts.verify("")), "token_missing");
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_time_and_text() {
        let ts = TokenService::new(&settings(), SECRET);
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        // Expires in 2 to 3 seconds.
        let iat = Utc::now() - chrono::Duration::seconds(ts.access_ttl - 3);
        let (tok, exp) = ts.issue(u, s, "a@b.co", false, iat).unwrap();
        let first = ts.verify(&tok).unwrap();
        assert_eq!(ts.remembered(), 1);
        let again = ts.verify(&tok).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second check is answered from memory"
        );

        // One changed character anywhere is another token, verified in full.
        let mut flipped = tok.clone().into_bytes();
        let i = tok.find('.').unwrap() + 5;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(ts.verify(&flipped).is_err());
        assert_eq!(ts.remembered(), 1);

        while jsonwebtoken::get_current_timestamp() <= exp as u64 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(code(ts.verify(&tok)), "token_expired");
        assert_eq!(ts.remembered(), 0, "an expired token is forgotten");
    }

    #[test]
    fn remembered_tokens_are_bounded() {
        let mut ts = TokenService::new(&settings(), SECRET);
        ts.verified = VerifiedTokens::new(8);
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        let tokens: Vec<String> = (0..40)
            .map(|_| ts.issue(u, s, "a@b.co", false, Utc::now()).unwrap().0)
            .collect();
        for t in &tokens {
            ts.verify(t).unwrap();
            assert!(ts.remembered() <= 8, "{} remembered", ts.remembered());
        }
        // Forgotten tokens are verified again, not refused.
        for t in &tokens {
            ts.verify(t).unwrap();
        }
    }

    #[test]
    fn rotated_keys_verify_until_retired() {
        let mut old = settings();
        old.jwt_key_id = "k0".into();
        let old_ts = TokenService::new(&old, SECRET);
        let (u, s) = (Uuid::new_v4(), Uuid::new_v4());
        let (old_tok, _) = old_ts.issue(u, s, "a@b.co", false, Utc::now()).unwrap();

        // Rotation: a new key signs, the old one still verifies.
        let mut rotated = settings();
        rotated.jwt_key_id = "k1".into();
        rotated.previous_keys = vec![crate::settings::JwtKey {
            kid: "k0".into(),
            secret: sdsim_runtime::config::Secret::new(String::from_utf8(SECRET.to_vec()).unwrap()),
        }];
        let new_secret = b"a-brand-new-secret-a-brand-new-secret";
        let ts = TokenService::new(&rotated, new_secret);
        assert!(ts.verify(&old_tok).is_ok());
        let (new_tok, _) = ts.issue(u, s, "a@b.co", false, Utc::now()).unwrap();
        let kid = jsonwebtoken::decode_header(&new_tok).unwrap().kid;
        assert_eq!(kid.as_deref(), Some("k1"));
        assert!(ts.verify(&new_tok).is_ok());
        // The old key cannot verify the new token (it never signs again).
        assert!(old_ts.verify(&new_tok).is_err());

        // Retired: removed from the list, its tokens are refused.
        rotated.previous_keys.clear();
        let retired = TokenService::new(&rotated, new_secret);
        assert_eq!(code(retired.verify(&old_tok)), "token_unknown_key");
        assert!(retired.verify(&new_tok).is_ok());

        // A token naming the current kid but signed with the old secret fails the signature.
        let mut forged = settings();
        forged.jwt_key_id = "k1".into();
        let (tok, _) = TokenService::new(&forged, SECRET)
            .issue(u, s, "a@b.co", false, Utc::now())
            .unwrap();
        assert_eq!(code(ts.verify(&tok)), "token_bad_signature");
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), a);
    }
}
