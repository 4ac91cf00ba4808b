//! Where email goes: an SMTP server, or `.eml` files (the embedded default).

use std::time::Duration;

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};

use std::sync::Mutex;

use lettre::transport::smtp::{
    authentication::Mechanism, client::AsyncSmtpConnection, extension::ClientId,
};

use crate::{
    Result,
    config::{MailSettings, MailTransport, SmtpTls},
};

pub enum Transport {
    /// SMTP with TLS (STARTTLS or implicit), through lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// SMTP without TLS, on connections of our own with TCP_NODELAY.
    Plain(PlainSmtp),
    File(AsyncFileTransport<Tokio1Executor>, String),
}

/// The parts of one email, as stored in the outbox.
pub struct Outgoing<'a> {
    pub message_id: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
}

/// Why a send failed: worth retrying, or never going to work.
pub enum SendError {
    Transient(String),
    Permanent(String),
}

impl Transport {
    pub fn from_settings(settings: &MailSettings) -> Result<Transport> {
        match settings.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&settings.file_dir).map_err(|e| {
                    anyhow::anyhow!("cannot create mail.file_dir {}: {e}", settings.file_dir)
                })?;
                Ok(Transport::File(
                    AsyncFileTransport::new(&settings.file_dir),
                    settings.file_dir.clone(),
                ))
            }
            MailTransport::Smtp if settings.smtp_tls == SmtpTls::None => {
                Ok(Transport::Plain(PlainSmtp {
                    host: settings.smtp_host.clone(),
                    port: settings.smtp_port,
                    credentials: (!settings.smtp_username.is_empty()).then(|| {
                        Credentials::new(
                            settings.smtp_username.clone(),
                            settings.smtp_password.clone(),
                        )
                    }),
                    idle: Mutex::new(Vec::new()),
                }))
            }
            MailTransport::Smtp => {
                let host = settings.smtp_host.as_str();
                let tls = || {
                    TlsParameters::new(host.to_string())
                        .map_err(|e| anyhow::anyhow!("mail TLS settings: {e}"))
                };
                let tls = match settings.smtp_tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::Starttls => Tls::Required(tls()?),
                    SmtpTls::Tls => Tls::Wrapper(tls()?),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(settings.smtp_port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(15)));
                if !settings.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        settings.smtp_username.clone(),
                        settings.smtp_password.clone(),
                    ));
                }
                Ok(Transport::Smtp(builder.build()))
            }
        }
    }

    /// Where mail goes, for the log.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) | Transport::Plain(_) => "SMTP".into(),
            Transport::File(_, dir) => format!(".eml files in {dir}"),
        }
    }

    pub async fn send(&self, from: &Mailbox, email: &Outgoing<'_>) -> Result<(), SendError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad recipient {}: {e}", email.to)))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(email.message_id.to_string()))
            .multipart(MultiPart::alternative_plain_html(
                email.text.to_string(),
                email.html.to_string(),
            ))
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Transport::Plain(plain) => plain.send(&message).await,
            Transport::File(file, _) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(e.to_string())),
        }
    }
}

/// Plain SMTP on pooled connections with TCP_NODELAY. lettre writes a
/// message's body and its closing "." in two writes; with Nagle's algorithm on,
/// each message then waits for the server's delayed ACK (about 40 ms), which
/// caps a connection at roughly 25 messages a second.
pub struct PlainSmtp {
    host: String,
    port: u16,
    credentials: Option<Credentials>,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else {
        SendError::Transient(e.to_string())
    }
}

impl PlainSmtp {
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(Duration::from_secs(15), connect)
            .await
            .map_err(|_| {
                SendError::Transient(format!(
                    "connecting to {}:{} timed out",
                    self.host, self.port
                ))
            })?
            .map_err(|e| {
                SendError::Transient(format!(
                    "cannot connect to {}:{}: {e}",
                    self.host, self.port
                ))
            })?;
        let _ = stream.set_nodelay(true);
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                .await
                .map_err(classify)?;
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }

    /// Sends with a deadline: a server that stops answering must not stall the worker.
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        tokio::time::timeout(Duration::from_secs(30), self.send_now(message))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transient(format!(
                    "{}:{} did not answer within 30 s",
                    self.host, self.port
                )))
            })
    }

    async fn send_now(&self, message: &Message) -> Result<(), SendError> {
        let bytes = message.formatted();
        let pooled = self.idle.lock().expect("smtp pool").pop();
        // A pooled connection may have been closed by the server; then try a fresh one.
        if let Some(mut conn) = pooled
            && conn.send(message.envelope(), &bytes).await.is_ok()
        {
            self.idle.lock().expect("smtp pool").push(conn);
            return Ok(());
        }
        let mut conn = self.connect().await?;
        conn.send(message.envelope(), &bytes)
            .await
            .map_err(classify)?;
        self.idle.lock().expect("smtp pool").push(conn);
        Ok(())
    }
}
