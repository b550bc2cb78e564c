//! Address verification and password reset end to end: the gateway, auth, the Redis mail
//! queue, the mail worker and a real SMTP listener.

mod common;

use common::*;
use reqwest::Method;
use sdsim_protocols::Service;
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

async fn mail_stack(db: &TestDb) -> (Stack, SmtpSink) {
    let sink = SmtpSink::start().await;
    let mut s = settings(db);
    s.auth.mail.transport = "smtp".into();
    s.auth.mail.smtp_port = sink.port;
    s.auth.mail.public_url = "https://app.example.com".into();
    let stack = Stack::start(s, &Service::ALL);
    stack.wait_ready().await;
    (stack, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_by_mail_ends_every_session() {
    let db = TestDb::create().await;
    let (s, mut sink) = mail_stack(&db).await;
    let email = unique_email("reset");
    s.register(&email, PASSWORD).await;
    let old = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // A known and an unknown address get the same answer; only the known one gets mail.
    let (st_known, b_known) = s
        .post_json(
            "/api/auth/password-reset/request",
            serde_json::json!({"email": email}),
        )
        .await;
    let (st_unknown, b_unknown) = s
        .post_json(
            "/api/auth/password-reset/request",
            serde_json::json!({"email": unique_email("nobody")}),
        )
        .await;
    assert_eq!((st_known, st_unknown), (202, 202));
    assert_eq!(b_known, b_unknown);
    let mail = sink
        .next(Duration::from_secs(10))
        .await
        .expect("a reset mail");
    assert!(
        mail.contains(&format!("To: {}", email.to_lowercase())),
        "{mail}"
    );
    assert!(mail.contains("Subject: Reset your password"), "{mail}");
    assert!(
        mail.contains("https://app.example.com/reset-password?token="),
        "{mail}"
    );
    let token = token_in(&mail);
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert!(
        sink.next(Duration::from_millis(800)).await.is_none(),
        "no mail for an unknown address"
    );

    // Bad inputs are named; a weak new password does not use up the link.
    let reset = |token: String, pw: &str| {
        s.post_json(
            "/api/auth/password-reset",
            serde_json::json!({"token": token, "new_password": pw}),
        )
    };
    let (st, b) = reset("nope".into(), "a brand new passphrase").await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("token")),
        "{b}"
    );
    let (st, b) = reset(token.clone(), "password1").await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("new_password")),
        "{b}"
    );

    let (st, b) = reset(token.clone(), "a brand new passphrase").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["sessions_ended"], 1);
    assert_eq!(s.profile(&old).await.0, 401, "every session ended");
    s.login(&email, "a brand new passphrase").await;
    let (st, _) = s
        .post_json(
            "/api/auth/login",
            serde_json::json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 401);
    // Single use.
    let (st, b) = reset(token, "yet another fine passphrase").await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("token")),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_verification_by_mail() {
    let db = TestDb::create().await;
    let (s, mut sink) = mail_stack(&db).await;
    let email = unique_email("verify");
    s.register(&email, PASSWORD).await;
    let token = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.profile(&token).await.1["user"]["is_verified"], false);

    let r = s
        .authed(Method::POST, "/api/auth/verify-email/request", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sent"], true);
    let mail = sink
        .next(Duration::from_secs(10))
        .await
        .expect("a verification mail");
    assert!(mail.contains("/verify-email?token="), "{mail}");
    let link = token_in(&mail);

    let (st, b) = s
        .post_json(
            "/api/auth/verify-email",
            serde_json::json!({"token": "forged"}),
        )
        .await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("token")),
        "{b}"
    );
    let (st, b) = s
        .post_json("/api/auth/verify-email", serde_json::json!({"token": link}))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.profile(&token).await.1["user"]["is_verified"], true);
    let (st, _) = s
        .post_json("/api/auth/verify-email", serde_json::json!({"token": link}))
        .await;
    assert_eq!(st, 422, "single use");
    // Already verified: nothing is sent.
    let r = s
        .authed(Method::POST, "/api/auth/verify-email/request", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sent"], false);
    let r = s
        .http
        .post(s.url("/api/auth/verify-email/request"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_mailer_writes_an_outbox_and_mail_survives_an_smtp_outage() {
    let db = TestDb::create().await;
    // File outbox (the local default).
    let outbox =
        std::env::temp_dir().join(format!("sdsim-outbox-{}", uuid::Uuid::new_v4().simple()));
    let mut s = settings(&db);
    s.auth.mail.outbox_dir = outbox.display().to_string();
    let stack = Stack::start(s.clone(), &Service::ALL);
    stack.wait_ready().await;
    let email = unique_email("outbox");
    stack.register(&email, PASSWORD).await;
    let (st, _) = stack
        .post_json(
            "/api/auth/password-reset/request",
            serde_json::json!({"email": email}),
        )
        .await;
    assert_eq!(st, 202);
    let mut found = None;
    for _ in 0..100 {
        if let Ok(mut dir) = std::fs::read_dir(&outbox) {
            if let Some(Ok(entry)) = dir.next() {
                found = Some(std::fs::read_to_string(entry.path()).unwrap());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = decode_mail(&found.expect("a mail in the outbox"));
    assert!(mail.contains("/reset-password?token="), "{mail}");
    drop(stack);
    let _ = std::fs::remove_dir_all(&outbox);

    // SMTP down when the mail is queued: it is delivered once the server is back.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe); // nothing listens there now
    s.auth.mail.transport = "smtp".into();
    s.auth.mail.smtp_port = port;
    s.auth.mail.smtp_timeout_ms = 500;
    let stack = Stack::start(s, &Service::ALL);
    stack.wait_ready().await;
    let (st, _) = stack
        .post_json(
            "/api/auth/password-reset/request",
            serde_json::json!({"email": email}),
        )
        .await;
    assert_eq!(st, 202);
    tokio::time::sleep(Duration::from_millis(400)).await; // at least one failed attempt
                                                          // The SMTP server comes up on that port.
    let mut sink = loop {
        match SmtpSinkOn::bind(port).await {
            Some(s) => break s,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mail = sink
        .next(Duration::from_secs(10))
        .await
        .expect("delivered after the outage");
    assert!(mail.contains("/reset-password?token="), "{mail}");
}

/// An SMTP sink on a chosen port (for the outage test).
struct SmtpSinkOn;

impl SmtpSinkOn {
    async fn bind(port: u16) -> Option<SmtpSink> {
        SmtpSink::start_on(port).await
    }
}
