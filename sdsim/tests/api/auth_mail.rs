//! Address verification and password reset end to end: the gateway, auth, the Redis mail
//! queue, the mail worker and a real SMTP listener.

use crate::helpers::*;
use reqwest::Method;
use sdsim_auth::settings::{MailTransport, SmtpTls};
use sdsim_protocols::Service;
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

async fn mail_stack(db: &TestDb) -> (Stack, SmtpSink) {
    let sink = SmtpSink::start().await;
    let mut s = settings(db);
    s.auth.mail.transport = MailTransport::Smtp;
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
    // One inbox cannot be flooded: past 5 mails an hour to one address (from anywhere),
    // 429; whether or not it has an account, and other addresses are not held up.
    let flooded = unique_email("flooded");
    for i in 0..6 {
        let (st, b) = s
            .post_json(
                "/api/auth/password-reset/request",
                serde_json::json!({"email": flooded.to_uppercase()}),
            )
            .await;
        assert_eq!(st, if i < 5 { 202 } else { 429 }, "request {i}: {b}");
    }
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
    let email = register_and_request_reset(&stack, "outbox").await;
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
    s.auth.mail.transport = MailTransport::Smtp;
    s.auth.mail.smtp_port = port;
    s.auth.mail.smtp_timeout_ms = 500;
    let stack = Stack::start(s, &Service::ALL);
    stack.wait_ready().await;
    request_reset(&stack, &email).await;
    tokio::time::sleep(Duration::from_millis(400)).await; // at least one failed attempt
                                                          // The SMTP server comes up on that port.
    let mut sink = loop {
        match SmtpSink::start_on(port).await {
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

/// A new account, and a password reset asked for it (202); its address.
async fn register_and_request_reset(stack: &Stack, tag: &str) -> String {
    let email = unique_email(tag);
    stack.register(&email, PASSWORD).await;
    request_reset(stack, &email).await;
    email
}

async fn request_reset(stack: &Stack, email: &str) {
    let (st, _) = stack
        .post_json(
            "/api/auth/password-reset/request",
            serde_json::json!({"email": email}),
        )
        .await;
    assert_eq!(st, 202);
}

/// Queues a mail job the way auth does (`LPUSH async:email:queue`).
async fn enqueue_mail(s: &sdsim::settings::Settings, to: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let job = sdsim_protocols::events::EmailJob {
        id: id.clone(),
        to: to.into(),
        subject: "TLS check".into(),
        body: format!("mail {id}"),
        kind: "verify_email".into(),
        attempts: 0,
    };
    let ns = sdsim_protocols::names::Namespace::new(s.redis.prefix.clone());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("LPUSH")
        .arg(ns.async_queue("email"))
        .arg(serde_json::to_string(&job).unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    id
}

/// Mail settings for a sink: its port, the TLS mode, its certificate trusted (or not).
fn tls_settings(
    db: &TestDb,
    sink: &SmtpSink,
    tls: SmtpTls,
    trust: bool,
) -> sdsim::settings::Settings {
    let mut s = settings(db);
    s.auth.mail.transport = MailTransport::Smtp;
    s.auth.mail.smtp_host = "127.0.0.1".into();
    s.auth.mail.smtp_port = sink.port;
    s.auth.mail.smtp_timeout_ms = 2_000;
    s.auth.mail.smtp_tls = tls;
    s.auth.mail.smtp_username = "relay-user".into();
    s.auth.mail.smtp_password = sdsim_runtime::config::Secret::new("relay-secret");
    if trust {
        let ca = std::env::temp_dir().join(format!(
            "sdsim-smtp-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&ca, sink.cert_pem.as_ref().expect("a TLS sink")).unwrap();
        s.auth.mail.smtp_ca_file = ca.display().to_string();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_over_tls_verifies_the_server_and_never_sends_the_password_in_the_clear() {
    let db = TestDb::create().await;

    // STARTTLS required, end to end: a reset mail goes out encrypted, logged in.
    let mut sink = SmtpSink::start_with(0, SinkTls::StartTls).await.unwrap();
    let stack = Stack::start(
        tls_settings(&db, &sink, SmtpTls::Starttls, true),
        &Service::ALL,
    );
    stack.wait_ready().await;
    register_and_request_reset(&stack, "tls").await;
    let got = sink
        .next_received(Duration::from_secs(10))
        .await
        .expect("the reset mail over STARTTLS");
    assert!(got.tls, "the mail was sent before STARTTLS");
    assert_eq!(got.auth.as_deref(), Some("\0relay-user\0relay-secret"));
    assert!(decode_mail(&got.raw).contains("/reset-password?token="));
    assert!(sink.cleartext_auth.lock().unwrap().is_empty());
    drop(stack);

    // SMTPS (TLS from the first byte).
    let mut sink = SmtpSink::start_with(0, SinkTls::Implicit).await.unwrap();
    let s = tls_settings(&db, &sink, SmtpTls::Tls, true);
    let stack = Stack::start(s.clone(), &[Service::Auth]);
    let id = enqueue_mail(&s, "smtps@example.com").await;
    let got = sink
        .next_received(Duration::from_secs(10))
        .await
        .expect("a mail over SMTPS");
    assert!(got.tls);
    assert!(got.raw.contains(&id), "{}", got.raw);
    drop(stack);

    // A server that does not offer STARTTLS (yet takes AUTH): nothing is sent, least of all
    // the password; the mail waits for a retry.
    let s = assert_refused(&db, SinkTls::None).await;
    let ns = sdsim_protocols::names::Namespace::new(s.redis.prefix.clone());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let waiting: i64 = redis::cmd("ZCARD")
        .arg(ns.async_delayed("email"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "the refused mail waits for a retry");

    // A certificate nobody vouches for (self-signed, not in smtp_ca_file): refused alike.
    assert_refused(&db, SinkTls::StartTls).await;
}

/// STARTTLS required, the sink's certificate not trusted: a queued mail never reaches a sink
/// speaking `mode`, and no AUTH goes out in the clear. The settings used.
async fn assert_refused(db: &TestDb, mode: SinkTls) -> sdsim::settings::Settings {
    let mut sink = SmtpSink::start_with(0, mode).await.unwrap();
    let mut s = tls_settings(db, &sink, SmtpTls::Starttls, false);
    s.redis.prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let stack = Stack::start(s.clone(), &[Service::Auth]);
    enqueue_mail(&s, "refused@example.com").await;
    assert!(
        sink.next_received(Duration::from_millis(1500))
            .await
            .is_none(),
        "a mail went out to a {mode:?} sink"
    );
    assert!(sink.cleartext_auth.lock().unwrap().is_empty());
    drop(stack);
    s
}

#[test]
fn smtp_tls_settings_are_checked() {
    let db_less = sdsim::settings::Settings::default();
    let check = |f: &dyn Fn(&mut sdsim::settings::Settings)| {
        let mut s = db_less.clone();
        s.auth.jwt_secret = sdsim_runtime::config::Secret::new(JWT_SECRET);
        s.auth.mail.transport = MailTransport::Smtp;
        f(&mut s);
        s.validate().err().map(|v| v.join("\n")).unwrap_or_default()
    };
    let e = check(&|s| {
        s.auth.mail.smtp_username = "u".into();
        s.auth.mail.smtp_password = sdsim_runtime::config::Secret::new("p");
    });
    assert!(e.contains("never sent in the clear"), "{e}");
    let e = check(&|s| {
        s.auth.mail.smtp_tls = SmtpTls::Starttls;
        s.auth.mail.smtp_username = "u".into();
    });
    assert!(e.contains("go together"), "{e}");
    let e = check(&|s| {
        s.auth.mail.smtp_tls = SmtpTls::Tls;
        s.auth.mail.smtp_ca_file = "/nonexistent/ca.pem".into();
    });
    assert!(
        e.contains("auth.mail.smtp_ca_file: cannot read /nonexistent/ca.pem"),
        "{e}"
    );
    let empty =
        std::env::temp_dir().join(format!("sdsim-empty-{}.pem", uuid::Uuid::new_v4().simple()));
    std::fs::write(&empty, "not a certificate").unwrap();
    let path = empty.display().to_string();
    let e = check(&|s| {
        s.auth.mail.smtp_tls = SmtpTls::Tls;
        s.auth.mail.smtp_ca_file = path.clone();
    });
    assert!(e.contains("holds no PEM certificate"), "{e}");
    let ok = check(&|s| {
        s.auth.mail.smtp_tls = SmtpTls::Starttls;
        s.auth.mail.smtp_username = "u".into();
        s.auth.mail.smtp_password = sdsim_runtime::config::Secret::new("p");
    });
    assert!(!ok.contains("smtp"), "{ok}");
}
