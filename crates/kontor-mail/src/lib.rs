//! Notification e-mail for kontor.
//!
//! A [`Mailer`] sends plain-text UTF-8 messages, either
//!
//! - into an **outbox folder** (the default, the server's `<data_dir>/outbox/`): one
//!   `<uuid>.eml` file per message, a complete RFC 5322 message as it would go on the wire,
//!   written by lettre's file transport ([`Mailer::send_once`] names the file after its key
//!   instead, so sending it again replaces it). The folder is created when missing. Nothing leaves the
//!   machine, which suits a fresh install, tests, and operators who pick mail up themselves; or
//! - through an **SMTP server**, configured by URL:
//!
//! | URL                                 | connection                          | default port |
//! |-------------------------------------|-------------------------------------|--------------|
//! | `smtp://host[:port]`                | plain SMTP, for a local relay       | 25           |
//! | `smtp://host[:port]?tls=starttls`   | STARTTLS, required                  | 587          |
//! | `smtps://host[:port]`               | implicit TLS                        | 465          |
//!
//! `user:password@` before the host adds SMTP AUTH credentials; both parts are percent-decoded
//! (write `%40` for `@`, `%3A` for `:`). A path (`smtp://relay:25/crm.example.com`) sets the
//! name sent with `EHLO`, which is `localhost` otherwise. TLS uses rustls and verifies the
//! server's certificate against Mozilla's root certificates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kontor_mail::MailError> {
//! use kontor_mail::{MailConfig, Mailer};
//!
//! let mailer = Mailer::new(&MailConfig::outbox("/var/lib/kontor/outbox"))?;
//! println!("mail: {}", mailer.describe()); // "outbox /var/lib/kontor/outbox"
//! mailer.send("Ada <ada@example.com>", "Welcome", "Hello Ada!").await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::address::AddressError;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::percent_decode_str;
use url::{Host, Url};

/// The sender used when none is configured.
pub const DEFAULT_FROM: &str = "kontor <noreply@localhost>";

/// How long one SMTP connection may wait on the server (connect, and each reply) before the
/// delivery fails.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and as whom the [`Mailer`] sends.
#[derive(Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The `From` mailbox, `addr@domain` or `Name <addr@domain>`.
    pub from: String,
    /// An SMTP URL (see the [crate documentation](crate)); `None` writes to `outbox_dir`.
    pub smtp_url: Option<String>,
    /// The outbox folder, used when `smtp_url` is `None`.
    pub outbox_dir: PathBuf,
}

impl MailConfig {
    /// Delivery into the outbox folder `outbox_dir`, from [`DEFAULT_FROM`].
    pub fn outbox(outbox_dir: impl Into<PathBuf>) -> Self {
        Self {
            from: DEFAULT_FROM.to_owned(),
            smtp_url: None,
            outbox_dir: outbox_dir.into(),
        }
    }
}

impl fmt::Debug for MailConfig {
    /// Like a derived `Debug`, with the SMTP password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let smtp_url = self
            .smtp_url
            .as_deref()
            .map(|raw| match parse_smtp_url(raw) {
                Ok(settings) => settings.describe(),
                Err(_) => "<invalid SMTP URL>".to_owned(),
            });
        f.debug_struct("MailConfig")
            .field("from", &self.from)
            .field("smtp_url", &smtp_url)
            .field("outbox_dir", &self.outbox_dir)
            .finish()
    }
}

/// Why a [`Mailer`] could not be built or a message not be sent.
///
/// No variant's message contains an SMTP password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The SMTP URL is malformed or asks for something unsupported.
    #[error("invalid SMTP URL: {0}")]
    InvalidSmtpUrl(String),
    /// The configured sender is not a valid mailbox.
    #[error("invalid sender address `{address}` (expected `addr@domain` or `Name <addr@domain>`): {source}")]
    InvalidFrom {
        address: String,
        source: AddressError,
    },
    /// The recipient passed to [`Mailer::send`] is not a valid mailbox.
    #[error("invalid recipient address `{address}` (expected `addr@domain` or `Name <addr@domain>`): {source}")]
    InvalidRecipient {
        address: String,
        source: AddressError,
    },
    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
    /// The outbox folder cannot be created.
    #[error("cannot create the outbox folder {}: {source}", path.display())]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing the `.eml` file failed.
    #[error("cannot write to the outbox: {0}")]
    File(#[from] lettre::transport::file::Error),
    /// Writing or placing the `<key>.eml` file of [`Mailer::send_once`] failed.
    #[error("cannot write {} to the outbox: {source}", path.display())]
    OutboxFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Setting up TLS, connecting to, or talking to the SMTP server failed.
    #[error("SMTP delivery via {server} failed: {source}")]
    Smtp {
        server: String,
        source: lettre::transport::smtp::Error,
    },
}

/// Sends notification e-mails. Cloning is cheap (one reference count); clones share the
/// transport.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
    /// [`Mailer::describe`]'s answer, computed once.
    description: String,
}

enum Transport {
    Outbox {
        dir: PathBuf,
        files: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Checks the configuration and builds the transport: parses the sender and the SMTP URL,
    /// or creates the outbox folder. Does not connect to the SMTP server.
    pub fn new(cfg: &MailConfig) -> Result<Mailer, MailError> {
        let from = cfg
            .from
            .trim()
            .parse::<Mailbox>()
            .map_err(|source| MailError::InvalidFrom {
                address: cfg.from.clone(),
                source,
            })?;
        let (transport, description) = match &cfg.smtp_url {
            None => {
                create_outbox(&cfg.outbox_dir)?;
                let files = AsyncFileTransport::new(&cfg.outbox_dir);
                let description = format!("outbox {}", cfg.outbox_dir.display());
                (
                    Transport::Outbox {
                        dir: cfg.outbox_dir.clone(),
                        files,
                    },
                    description,
                )
            }
            Some(raw) => {
                let settings = parse_smtp_url(raw)?;
                let description = settings.describe();
                let smtp = settings.transport().map_err(|source| MailError::Smtp {
                    server: description.clone(),
                    source,
                })?;
                (Transport::Smtp(smtp), description)
            }
        };
        Ok(Mailer {
            inner: Arc::new(Inner {
                from,
                transport,
                description,
            }),
        })
    }

    /// Sends one plain-text message to `to` (`addr@domain` or `Name <addr@domain>`).
    ///
    /// The body is UTF-8 text; lettre picks the transfer encoding (7bit, quoted-printable or
    /// base64). An SMTP delivery opens one connection per message.
    pub async fn send(&self, to: &str, subject: &str, text_body: &str) -> Result<(), MailError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let message = self.message(&id, to, subject, text_body)?;
        self.deliver(message, None).await
    }

    /// Sends the message known by `key` (ASCII letters, digits, `-`, `_` and `.`; other
    /// characters are replaced by `_`), for a sender that may send it again after a crash:
    /// in the outbox it is the file `<key>.eml`, written whole and replaced by a repeat, so it
    /// is there once however often it was sent; over SMTP a repeat goes out again but carries
    /// the same `Message-ID` (`<key@sender's domain>`), by which a receiver can recognise it.
    pub async fn send_once(
        &self,
        key: &str,
        to: &str,
        subject: &str,
        text_body: &str,
    ) -> Result<(), MailError> {
        let key: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let message = self.message(&key, to, subject, text_body)?;
        self.deliver(message, Some(&key)).await
    }

    fn message(
        &self,
        id: &str,
        to: &str,
        subject: &str,
        text_body: &str,
    ) -> Result<Message, MailError> {
        let recipient =
            to.trim()
                .parse::<Mailbox>()
                .map_err(|source| MailError::InvalidRecipient {
                    address: to.to_owned(),
                    source,
                })?;
        let from = self.inner.from.clone();
        // lettre would name the machine in the Message-ID only with its `hostname` feature;
        // the sender's domain is the conventional choice anyway.
        let message_id = format!("<{id}@{}>", from.email.domain());
        Ok(Message::builder()
            .from(from)
            .to(recipient)
            .subject(subject)
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(text_body.to_owned())?)
    }

    /// Hands `message` to the transport; into the outbox as `<key>.eml` when a key is given.
    async fn deliver(&self, message: Message, key: Option<&str>) -> Result<(), MailError> {
        match &self.inner.transport {
            Transport::Outbox { dir, files } => {
                // Recreated if someone removed it while the server runs.
                if !tokio::fs::try_exists(dir).await.unwrap_or(false) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|source| MailError::Outbox {
                            path: dir.clone(),
                            source,
                        })?;
                }
                match key {
                    None => {
                        files.send(message).await?;
                    }
                    Some(key) => {
                        // Whole or not at all: a temporary name (no `.eml`), then a rename.
                        let temp =
                            dir.join(format!(".{key}.{}.tmp", uuid::Uuid::new_v4().simple()));
                        let path = dir.join(format!("{key}.eml"));
                        let written = async {
                            tokio::fs::write(&temp, message.formatted()).await?;
                            tokio::fs::rename(&temp, &path).await
                        }
                        .await;
                        if let Err(source) = written {
                            let _ = tokio::fs::remove_file(&temp).await;
                            return Err(MailError::OutboxFile { path, source });
                        }
                    }
                }
            }
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|source| MailError::Smtp {
                    server: self.inner.description.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Where mail goes, for logs: `outbox <dir>` or the SMTP URL with defaults filled in and any
    /// password replaced by `***` (e.g. `smtp://alice:***@mail.example.com:587?tls=starttls`).
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.inner.from.to_string())
            .field("transport", &self.inner.description)
            .finish()
    }
}

fn create_outbox(dir: &Path) -> Result<(), MailError> {
    std::fs::create_dir_all(dir).map_err(|source| MailError::Outbox {
        path: dir.to_owned(),
        source,
    })?;
    remove_stale_parts(dir);
    Ok(())
}

/// Removes the temporary files of messages whose writer died before renaming them into place
/// (their message is written again: the sender marks it sent only after the rename). Only
/// those an hour old, so that another node's message being written now is left alone.
fn remove_stale_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < hour_ago);
        if name.starts_with('.') && name.ends_with(".tmp") && stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    ImplicitTls,
}

/// An SMTP URL, checked and with its defaults applied.
#[derive(Debug)]
struct SmtpSettings {
    host: String,
    port: u16,
    security: Security,
    user: Option<String>,
    password: Option<String>,
    ehlo_name: Option<String>,
}

fn parse_smtp_url(raw: &str) -> Result<SmtpSettings, MailError> {
    let invalid = |reason: String| MailError::InvalidSmtpUrl(reason);
    // url's messages never repeat the input, so no password can leak through them.
    let url = Url::parse(raw.trim()).map_err(|e| invalid(format!("{e}")))?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => {
            return Err(invalid(format!(
                "unsupported scheme `{other}`, expected smtp:// or smtps://"
            )))
        }
    };
    let host = match url.host() {
        Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(Host::Ipv4(addr)) => addr.to_string(),
        Some(Host::Ipv6(addr)) => addr.to_string(),
        _ => {
            return Err(invalid(
                "missing host, expected smtp://host:port".to_owned(),
            ))
        }
    };
    let mut starttls = false;
    for (key, value) in url.query_pairs() {
        match (&*key, &*value) {
            ("tls", "starttls") if !implicit_tls => starttls = true,
            ("tls", "starttls") => {
                return Err(invalid(
                    "smtps:// already uses TLS; drop `?tls=starttls`".to_owned(),
                ))
            }
            ("tls", other) => {
                return Err(invalid(format!(
                    "unsupported `tls={other}`: use `?tls=starttls`, or smtps:// for implicit TLS"
                )))
            }
            (other, _) => {
                return Err(invalid(format!(
                    "unknown parameter `{other}`, only `tls` is allowed"
                )))
            }
        }
    }
    let (security, default_port) = match (implicit_tls, starttls) {
        (true, _) => (Security::ImplicitTls, 465),
        (false, true) => (Security::StartTls, 587),
        (false, false) => (Security::Plain, 25),
    };
    let decode = |part: &str, what: &str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid(format!("the {what} is not UTF-8 once percent-decoded")))
    };
    let user = match url.username() {
        "" => None,
        name => Some(decode(name, "user name")?),
    };
    let password = url.password().map(|p| decode(p, "password")).transpose()?;
    if user.is_none() && password.is_some() {
        return Err(invalid(
            "a password needs a user name (smtp://user:password@host)".to_owned(),
        ));
    }
    let ehlo_name = Some(url.path().trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Ok(SmtpSettings {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        user,
        password,
        ehlo_name,
    })
}

impl SmtpSettings {
    /// The URL again, with its defaults filled in and the password replaced by `***`.
    fn describe(&self) -> String {
        let scheme = if self.security == Security::ImplicitTls {
            "smtps"
        } else {
            "smtp"
        };
        let userinfo = match (&self.user, &self.password) {
            (Some(user), Some(_)) => format!("{user}:***@"),
            (Some(user), None) => format!("{user}@"),
            (None, _) => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let path = self
            .ehlo_name
            .as_ref()
            .map(|name| format!("/{name}"))
            .unwrap_or_default();
        let query = if self.security == Security::StartTls {
            "?tls=starttls"
        } else {
            ""
        };
        format!("{scheme}://{userinfo}{host}:{}{path}{query}", self.port)
    }

    fn transport(
        self,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
        let tls = match self.security {
            Security::Plain => Tls::None,
            Security::StartTls => Tls::Required(TlsParameters::new(self.host.clone())?),
            Security::ImplicitTls => Tls::Wrapper(TlsParameters::new(self.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = self.user {
            builder =
                builder.credentials(Credentials::new(user, self.password.unwrap_or_default()));
        }
        if let Some(name) = self.ehlo_name {
            builder = builder.hello_name(ClientId::Domain(name));
        }
        Ok(builder.build())
    }
}
