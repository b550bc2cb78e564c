//! The auth service's settings (`[auth]`, `[auth.listen]`, `[auth.limits]`, `[auth.mail]`)
//! and their checks.

use sdsim_protocols::ports;
use sdsim_runtime::config::{Listen, Secret};
use serde::{Deserialize, Serialize};

/// How mail leaves the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Each mail is written to `outbox_dir` as a .eml file and its link logged (local use).
    File,
    /// Sent through `smtp_host:smtp_port`.
    Smtp,
}

/// TLS towards the SMTP server. The certificate is always verified against the system's
/// roots plus `smtp_ca_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on loopback).
    None,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS or no delivery (submission, port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    /// Whether credentials may be sent: only over TLS that cannot be skipped.
    pub fn is_required(self) -> bool {
        matches!(self, SmtpTls::Starttls | SmtpTls::Tls)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HMAC key of access tokens (HS256). Must be at least 32 bytes.
    pub jwt_secret: Secret,
    /// `kid` header of the tokens signed with `jwt_secret`.
    pub jwt_key_id: String,
    /// Keys that signed before `jwt_secret` (key rotation): tokens they signed still verify
    /// until the key is removed from this list (retired). Nothing new is signed with them.
    pub previous_keys: Vec<JwtKey>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_seconds: i64,
    pub refresh_ttl_seconds: i64,
    /// bcrypt cost (4..=31). 12 takes about 0.3 s of a core per hash.
    pub bcrypt_cost: u32,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Least zxcvbn strength (0..=4) of a new password; 3 means "safely unguessable".
    pub min_password_score: u8,
    /// bcrypt hashes running at once; 0 means one per core.
    pub max_concurrent_hashes: usize,
    /// How long a validated session is trusted in-process before Redis is asked again;
    /// bounds how late another instance's revocation is seen (keep it under 1000).
    pub validation_cache_ms: u64,
    /// Where the auth service listens.
    pub listen: Listen,
    pub limits: AuthLimits,
    pub mail: MailSettings,
}

/// Outgoing mail (verification and password-reset links).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub outbox_dir: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_timeout_ms: u64,
    pub smtp_tls: SmtpTls,
    /// Extra trusted roots (PEM), e.g. a private CA; empty: the system's roots only.
    pub smtp_ca_file: String,
    /// SMTP AUTH credentials; only ever sent over TLS (`starttls` or `tls`).
    pub smtp_username: String,
    pub smtp_password: Secret,
    pub from: String,
    /// Where links in mails point (the web app or the gateway).
    pub public_url: String,
    /// How long a verification or reset link works.
    pub token_ttl_seconds: i64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            outbox_dir: ".local/outbox".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_timeout_ms: 10_000,
            smtp_tls: SmtpTls::None,
            smtp_ca_file: String::new(),
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            from: "sdsim <no-reply@sdsim.local>".into(),
            public_url: "http://127.0.0.1:8000".into(),
            token_ttl_seconds: 3_600,
        }
    }
}

/// A verification-only signing key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    pub kid: String,
    pub secret: Secret,
}

/// Abuse limits, counted in Redis so they hold across every instance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthLimits {
    /// Failed logins allowed for one account from one address per lockout window; past it,
    /// that address is locked out of that account until the window ends.
    pub login_failures_per_account_ip: u32,
    /// Failed logins allowed for one account from all addresses per window (distributed
    /// guessing); past it the account is locked for at most the window.
    pub login_failures_per_account: u32,
    /// The window, counted from the first failure (continued attempts do not extend it, so
    /// nobody can keep a real user locked out for longer than this).
    pub login_lockout_seconds: u64,
    /// Login attempts per client address per minute, whatever the account.
    pub login_per_ip_per_minute: u32,
    /// Registrations per client address per hour.
    pub register_per_ip_per_hour: u32,
    /// Token refreshes per client address per minute.
    pub refresh_per_ip_per_minute: u32,
    /// Verification and password-reset requests per client address per hour.
    pub mail_per_ip_per_hour: u32,
    /// Verification and password-reset mails to one e-mail address per hour, from any client.
    pub mail_per_address_per_hour: u32,
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self {
            login_failures_per_account_ip: 5,
            login_failures_per_account: 50,
            login_lockout_seconds: 300,
            login_per_ip_per_minute: 60,
            register_per_ip_per_hour: 30,
            refresh_per_ip_per_minute: 120,
            mail_per_ip_per_hour: 20,
            mail_per_address_per_hour: 5,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            jwt_key_id: "k1".into(),
            previous_keys: Vec::new(),
            issuer: "sdsim-auth".into(),
            audience: "sdsim".into(),
            access_ttl_seconds: 15 * 60,
            refresh_ttl_seconds: 30 * 24 * 3600,
            bcrypt_cost: 12,
            leeway_seconds: 5,
            min_password_score: 3,
            max_concurrent_hashes: 0,
            validation_cache_ms: 500,
            listen: Listen::local(ports::AUTH_GRPC, ports::AUTH_HTTP),
            limits: AuthLimits::default(),
            mail: MailSettings::default(),
        }
    }
}

/// Problems with the auth settings, each naming the setting.
pub fn validate(s: &AuthSettings, errors: &mut Vec<String>) {
    if !(4..=31).contains(&s.bcrypt_cost) {
        errors.push(format!(
            "auth.bcrypt_cost must be between 4 and 31, got {}",
            s.bcrypt_cost
        ));
    }
    let mut kids = vec![s.jwt_key_id.as_str()];
    for (i, k) in s.previous_keys.iter().enumerate() {
        if k.secret.expose().len() < 32 {
            errors.push(format!(
                "auth.previous_keys[{i}].secret must be at least 32 bytes"
            ));
        }
        if k.kid.is_empty() || kids.contains(&k.kid.as_str()) {
            errors.push(format!(
                "auth.previous_keys[{i}].kid must be non-empty and differ from every other key id"
            ));
        }
        kids.push(&k.kid);
    }
    let mail = &s.mail;
    if (!mail.smtp_username.is_empty() || !mail.smtp_password.is_empty())
        && !mail.smtp_tls.is_required()
    {
        errors.push(
            "auth.mail.smtp_username and smtp_password need auth.mail.smtp_tls = \"starttls\" or \"tls\": credentials are never sent in the clear"
                .into(),
        );
    }
    if mail.smtp_username.is_empty() != mail.smtp_password.is_empty() {
        errors.push("auth.mail.smtp_username and smtp_password go together".into());
    }
    if mail.transport == MailTransport::Smtp && !mail.smtp_ca_file.is_empty() {
        if let Err(e) = crate::mailer::read_ca_file(&mail.smtp_ca_file) {
            errors.push(format!("auth.mail.smtp_ca_file: {e}"));
        }
    }
    if mail.from.parse::<lettre::message::Mailbox>().is_err() {
        errors.push(format!(
            "auth.mail.from is not a mail address: {:?}",
            mail.from
        ));
    }
    if s.validation_cache_ms >= 1000 {
        errors.push(
            "auth.validation_cache_ms must be below 1000 (revocation is promised within 1 s)"
                .into(),
        );
    }
    if s.min_password_score > 4 {
        errors.push(format!(
            "auth.min_password_score must be between 0 and 4, got {}",
            s.min_password_score
        ));
    }
    if !s.jwt_secret.is_empty() && s.jwt_secret.expose().len() < 32 {
        errors.push("auth.jwt_secret must be at least 32 bytes".into());
    }
    if s.access_ttl_seconds <= 0 || s.refresh_ttl_seconds <= s.access_ttl_seconds {
        errors.push(
            "auth.access_ttl_seconds must be positive and below auth.refresh_ttl_seconds".into(),
        );
    }
}
