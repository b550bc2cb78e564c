//! A real SMTP listener, plain or TLS, and reading the mails it got.

use super::*;

/// How an [`SmtpSink`] speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain SMTP; advertises AUTH but not STARTTLS (a server that would take a password in
    /// the clear).
    None,
    /// Offers STARTTLS with its own certificate.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// One mail as the sink received it.
#[derive(Debug)]
pub struct Received {
    /// Headers and body as sent (see [`decode_mail`]).
    pub raw: String,
    /// Whether the session was encrypted when the mail was sent.
    pub tls: bool,
    /// The decoded `AUTH PLAIN` response (`\0user\0password`), if the client logged in.
    pub auth: Option<String>,
}

/// A real SMTP listener on 127.0.0.1 that accepts every mail and hands it over, optionally
/// over TLS with a freshly made self-signed certificate for 127.0.0.1.
pub struct SmtpSink {
    pub port: u16,
    /// The certificate a client must trust (PEM), for TLS sinks.
    pub cert_pem: Option<String>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
    /// Every AUTH line seen on an unencrypted session (must stay empty).
    pub cleartext_auth: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

enum SmtpEnd<S> {
    Closed,
    StartTls(S),
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await.expect("bind an SMTP sink")
    }

    /// On a chosen port; None if it is taken.
    pub async fn start_on(port: u16) -> Option<Self> {
        Self::start_with(port, SinkTls::None).await
    }

    pub async fn start_with(port: u16, mode: SinkTls) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .ok()?;
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (acceptor, cert_pem) = match mode {
            SinkTls::None => (None, None),
            SinkTls::StartTls | SinkTls::Implicit => {
                let (a, pem) = tls_acceptor();
                (Some(a), Some(pem))
            }
        };
        let cleartext_auth = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = cleartext_auth.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, acceptor, seen) = (tx.clone(), acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    if mode == SinkTls::Implicit {
                        let Some(a) = acceptor else { return };
                        if let Ok(tls) = a.accept(stream).await {
                            smtp_session(tls, true, false, true, &tx, &seen).await;
                        }
                        return;
                    }
                    let offer = acceptor.is_some();
                    if let SmtpEnd::StartTls(plain) =
                        smtp_session(stream, false, offer, true, &tx, &seen).await
                    {
                        if let Some(a) = acceptor {
                            if let Ok(tls) = a.accept(plain).await {
                                // After STARTTLS the client speaks first (EHLO again).
                                smtp_session(tls, true, false, false, &tx, &seen).await;
                            }
                        }
                    }
                });
            }
        });
        Some(Self {
            port,
            cert_pem,
            rx,
            cleartext_auth,
        })
    }

    /// The next mail's headers and decoded text, within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<String> {
        Some(decode_mail(&self.next_received(within).await?.raw))
    }

    /// The next mail as received (with how it came), within `within`.
    pub async fn next_received(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.rx.recv()).await.ok()?
    }
}

/// A TLS acceptor with a new self-signed certificate for 127.0.0.1, and that certificate.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        ck.cert.pem(),
    )
}

/// One SMTP conversation until QUIT, a dropped connection, or STARTTLS (then the raw stream
/// comes back to be wrapped). A new connection is greeted (`greet`).
async fn smtp_session<S>(
    stream: S,
    tls: bool,
    offer_starttls: bool,
    greet: bool,
    tx: &tokio::sync::mpsc::UnboundedSender<Received>,
    cleartext_auth: &std::sync::Mutex<Vec<String>>,
) -> SmtpEnd<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use base64::Engine;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut io = BufReader::new(stream);
    if greet {
        let _ = io.get_mut().write_all(b"220 sink ESMTP\r\n").await;
    }
    let mut auth = None;
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match io.read_line(&mut line).await {
            Ok(0) | Err(_) => return SmtpEnd::Closed,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']).to_string();
        if let Some(buf) = data.as_mut() {
            if text == "." {
                let raw = data.take().unwrap();
                let _ = tx.send(Received {
                    raw,
                    tls,
                    auth: auth.clone(),
                });
                let _ = io.get_mut().write_all(b"250 OK queued\r\n").await;
            } else {
                buf.push_str(text.strip_prefix('.').unwrap_or(&text));
                buf.push_str("\r\n");
            }
            continue;
        }
        let mut words = text.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if offer_starttls && !tls => b"250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "EHLO" => b"250-sink\r\n250 AUTH PLAIN\r\n",
            "HELO" => b"250 sink\r\n",
            "STARTTLS" if offer_starttls && !tls => {
                let _ = io.get_mut().write_all(b"220 ready for TLS\r\n").await;
                return SmtpEnd::StartTls(io.into_inner());
            }
            "AUTH" => {
                if !tls {
                    cleartext_auth.lock().unwrap().push(text.clone());
                }
                let plain = words.nth(1).unwrap_or("");
                auth = base64::engine::general_purpose::STANDARD
                    .decode(plain)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                b"235 2.7.0 authenticated\r\n"
            }
            "DATA" => {
                data = Some(String::new());
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return SmtpEnd::Closed;
            }
            _ => b"250 OK\r\n",
        };
        let _ = io.get_mut().write_all(reply).await;
    }
}

/// Undoes the transfer encoding lettre chose (quoted-printable or base64) so tests can read
/// the text.
pub fn decode_mail(raw: &str) -> String {
    use base64::Engine;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let lower = head.to_ascii_lowercase();
    let text = if lower.contains("content-transfer-encoding: base64") {
        let compact: String = body.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    } else if lower.contains("content-transfer-encoding: quoted-printable") {
        body.replace("=\r\n", "").replace("=3D", "=")
    } else {
        body.to_string()
    };
    format!("{head}\r\n\r\n{text}")
}

/// The `token=` value of the first link in a mail.
pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("a link with a token") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
