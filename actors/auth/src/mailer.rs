//! The mail worker: takes [`EmailJob`]s from `async:email:queue` and delivers them, by SMTP
//! (lettre) or, locally, as .eml files in an outbox directory (with the link logged).
//!
//! At-least-once: a job is moved atomically (`LMOVE`) to `async:email:processing` while it is
//! sent and removed only once delivered, so a crash never loses one; at start-up the worker
//! puts anything left in processing back in the queue. A failed delivery waits in
//! `async:email:delayed` (a sorted set by due time) and is retried with exponential backoff
//! (1 s, 2 s, 4 s, ... capped at 10 min; 12 attempts, about an hour), then dropped with an
//! error log. The queue lives in Redis, so any auth instance
//! may enqueue and any may deliver.

use crate::settings::{MailSettings, MailTransport, SmtpTls};
use actix::prelude::*;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use redis::aio::ConnectionManager;
use sdsim_protocols::events::EmailJob;
use sdsim_protocols::names::Namespace;
use sdsim_runtime::queue;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::time::Duration;

const MAX_ATTEMPTS: u32 = 12;
const MAX_BACKOFF_MS: u64 = 600_000;
const POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct MailWorker {
    redis: ConnectionManager,
    ns: Namespace,
    settings: MailSettings,
    transport: Option<Transport>,
    busy: bool,
    link: ChildLink,
}

impl MailWorker {
    pub fn child(redis: ConnectionManager, ns: Namespace, settings: MailSettings) -> ChildSpec {
        ChildSpec::worker("mailer", Restart::Permanent, move |link| {
            let addr = MailWorker {
                redis: redis.clone(),
                ns: ns.clone(),
                settings: settings.clone(),
                transport: None,
                busy: false,
                link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }

    fn transport(s: &MailSettings) -> Result<Transport, String> {
        match s.transport {
            MailTransport::Smtp => smtp_transport(s).map(Transport::Smtp),
            MailTransport::File => {
                std::fs::create_dir_all(&s.outbox_dir)
                    .map_err(|e| format!("cannot create the outbox {}: {e}", s.outbox_dir))?;
                Ok(Transport::File(AsyncFileTransport::new(&s.outbox_dir)))
            }
        }
    }

    fn drain(&mut self, ctx: &mut Context<Self>) {
        let Some(transport) = self.transport.clone() else {
            return;
        };
        if self.busy {
            return;
        }
        self.busy = true;
        let mut conn = self.redis.clone();
        let queue = self.ns.async_queue("email");
        let processing = self.ns.async_processing("email");
        let delayed = self.ns.async_delayed("email");
        let from = self.settings.from.clone();
        let fut = async move {
            // Retries that are due go back in the queue (ZREM decides who moves each one).
            let now_ms = chrono::Utc::now().timestamp_millis();
            let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&delayed)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(100)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            for job in due {
                let removed: i64 = redis::cmd("ZREM")
                    .arg(&delayed)
                    .arg(&job)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(0);
                if removed == 1 {
                    let _: redis::RedisResult<i64> = redis::cmd("LPUSH")
                        .arg(&queue)
                        .arg(&job)
                        .query_async(&mut conn)
                        .await;
                }
            }
            loop {
                let raw = match queue::take(&mut conn, &queue, &processing).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail queue unreachable");
                        return;
                    }
                };
                let Some(raw) = raw else { return };
                let outcome = match serde_json::from_str::<EmailJob>(&raw) {
                    Ok(job) => deliver(&transport, &from, &job)
                        .await
                        .map_err(|e| (Some(job), e)),
                    Err(e) => Err((None, format!("not a mail job: {e}"))),
                };
                queue::done(&mut conn, &processing, &raw).await;
                if let Err((job, e)) = outcome {
                    match job {
                        Some(mut job) if job.attempts + 1 < MAX_ATTEMPTS => {
                            job.attempts += 1;
                            let wait = (1_000u64 << (job.attempts - 1).min(20)).min(MAX_BACKOFF_MS);
                            tracing::warn!(id = %job.id, attempt = job.attempts, retry_in_ms = wait, error = %e, "mail not delivered; will retry");
                            if let Ok(again) = serde_json::to_string(&job) {
                                let due = chrono::Utc::now().timestamp_millis() + wait as i64;
                                let _: redis::RedisResult<i64> = redis::cmd("ZADD")
                                    .arg(&delayed)
                                    .arg(due)
                                    .arg(again)
                                    .query_async(&mut conn)
                                    .await;
                            }
                        }
                        Some(job) => {
                            tracing::error!(id = %job.id, to = %job.to, error = %e, "mail dropped after {MAX_ATTEMPTS} attempts")
                        }
                        None => tracing::error!(error = %e, "malformed mail job dropped"),
                    }
                }
            }
        };
        ctx.spawn(fut.into_actor(self).map(|_, act, _| act.busy = false));
    }
}

/// The trusted roots in a PEM file: every certificate in it, at least one.
pub fn read_ca_file(path: &str) -> Result<Certificate, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let count = String::from_utf8_lossy(&pem)
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    if count == 0 {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Certificate::from_pem(&pem).map_err(|e| format!("{path}: {e}"))
}

/// The SMTP client `s` describes: TLS as `smtp_tls` says, the server's certificate verified
/// against the system's roots and `smtp_ca_file`, credentials (only over TLS, which the
/// settings check enforces).
fn smtp_transport(s: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = if s.smtp_tls == SmtpTls::None {
        Tls::None
    } else {
        let mut params = TlsParameters::builder(s.smtp_host.clone());
        if !s.smtp_ca_file.is_empty() {
            params = params.add_root_certificate(read_ca_file(&s.smtp_ca_file)?);
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("cannot set up TLS for {}: {e}", s.smtp_host))?;
        match s.smtp_tls {
            SmtpTls::Opportunistic => Tls::Opportunistic(params),
            SmtpTls::Starttls => Tls::Required(params),
            SmtpTls::Tls | SmtpTls::None => Tls::Wrapper(params),
        }
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.smtp_host)
        .port(s.smtp_port)
        .timeout(Some(Duration::from_millis(s.smtp_timeout_ms)))
        .tls(tls);
    if !s.smtp_username.is_empty() {
        b = b.credentials(Credentials::new(
            s.smtp_username.clone(),
            s.smtp_password.expose().to_string(),
        ));
    }
    Ok(b.build())
}

async fn deliver(transport: &Transport, from: &str, job: &EmailJob) -> Result<(), String> {
    let to: Mailbox = job.to.parse().map_err(|e| format!("bad recipient: {e}"))?;
    let from: Mailbox = from.parse().map_err(|e| format!("bad sender: {e}"))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(job.subject.clone())
        .message_id(Some(format!("<{}@sdsim>", job.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(job.body.clone())
        .map_err(|e| format!("cannot build the mail: {e}"))?;
    match transport {
        Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        Transport::File(t) => {
            let id = t.send(message).await.map_err(|e| e.to_string())?;
            // Locally there is no inbox: the log is where the link is found.
            tracing::info!(to = %job.to, kind = %job.kind, file = %id, body = %job.body, "mail written to the outbox");
            Ok(())
        }
    }
}

impl Actor for MailWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match Self::transport(&self.settings) {
            Ok(t) => self.transport = Some(t),
            Err(e) => {
                self.link.fail(e);
                ctx.stop();
                return;
            }
        }
        // Jobs a previous instance was sending when it died go back in the queue first.
        let mut conn = self.redis.clone();
        let queue = self.ns.async_queue("email");
        let processing = self.ns.async_processing("email");
        ctx.wait(
            async move { queue::recover(&mut conn, &processing, &queue).await }.into_actor(self),
        );
        ctx.run_interval(POLL, |act, ctx| act.drain(ctx));
    }
}
sdsim_runtime::impl_supervised!(MailWorker);
