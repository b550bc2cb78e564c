//! Secrets stay secret as a user meets them: `sdsim config` and the log of a process that
//! fails on start print no secret's value, whichever way it was given.

use std::process::{Command, Output};

const JWT: &str = "jwt-secret-5f0c9a1e-0123456789abcdef";
const OLD_KEY: &str = "old-key-8b1d22c7-0123456789abcdef";
const SMTP_PASSWORD: &str = "smtp-pw-c41e9";
const DB_PASSWORD: &str = "db-pw-77a0f";
const REDIS_PASSWORD: &str = "redis-pw-3b9d2";

/// `sdsim <args>` with every secret set through the environment.
fn sdsim_with_secrets(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdsim"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SDSIM_LOG", "debug")
        .env("SDSIM_AUTH__JWT_SECRET", JWT)
        .env(
            "SDSIM_AUTH__PREVIOUS_KEYS",
            format!("[{{kid=\"k0\",secret=\"{OLD_KEY}\"}}]"),
        )
        .env("SDSIM_AUTH__MAIL__SMTP_TLS", "tls")
        .env("SDSIM_AUTH__MAIL__SMTP_USERNAME", "relay")
        .env("SDSIM_AUTH__MAIL__SMTP_PASSWORD", SMTP_PASSWORD)
        // Nothing listens on port 9: a start fails at once, after logging what it tried.
        .env(
            "DATABASE_URL",
            format!("postgres://sdsim:{DB_PASSWORD}@127.0.0.1:9/sdsim"),
        )
        .env(
            "REDIS_URL",
            format!("redis://:{REDIS_PASSWORD}@127.0.0.1:9/"),
        )
        .env("SDSIM_AUTH__LISTEN__GRPC", "127.0.0.1:0")
        .env("SDSIM_AUTH__LISTEN__HTTP", "127.0.0.1:0")
        .output()
        .expect("run sdsim")
}

fn assert_no_secret(what: &str, out: &Output) {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [JWT, OLD_KEY, SMTP_PASSWORD, DB_PASSWORD, REDIS_PASSWORD] {
        assert!(!text.contains(secret), "{what} printed {secret}:\n{text}");
    }
}

#[test]
fn sdsim_config_prints_every_setting_but_no_secret() {
    let out = sdsim_with_secrets(&["config"]);
    assert!(out.status.success(), "{out:?}");
    assert_no_secret("sdsim config", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The secrets are there, redacted; the rest is printed as set.
    assert_eq!(v["auth"]["jwt_secret"], "<redacted>");
    assert_eq!(v["auth"]["previous_keys"][0]["secret"], "<redacted>");
    assert_eq!(v["auth"]["previous_keys"][0]["kid"], "k0");
    assert_eq!(v["auth"]["mail"]["smtp_password"], "<redacted>");
    assert_eq!(v["auth"]["mail"]["smtp_username"], "relay");
    assert_eq!(v["database"]["url"], "<redacted>");
    assert_eq!(v["redis"]["url"], "<redacted>");
    assert_eq!(v["auth"]["listen"]["grpc"], "127.0.0.1:0");
}

#[test]
fn a_process_that_cannot_start_logs_no_secret() {
    let out = sdsim_with_secrets(&["serve", "auth"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database"), "{stderr}");
    assert_no_secret("sdsim serve auth", &out);
}
