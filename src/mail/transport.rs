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

use crate::{
    Result,
    config::{MailSettings, MailTransport, SmtpTls},
};

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
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
            Transport::Smtp(_) => "SMTP".into(),
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
            Transport::File(file, _) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(e.to_string())),
        }
    }
}
