//! Settings: built-in defaults, an optional file and the environment, in that order.

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// Every setting. `config/default.toml` documents each field, its default and
/// its environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub permissions: PermissionSettings,
    pub api: ApiSettings,
    pub mail: MailSettings,
    pub webhooks: WebhookSettings,
    pub jobs: JobSettings,
    #[serde(default)]
    pub promotions: Vec<TrackSettings>,
    #[serde(default)]
    pub resources: Vec<ResourceSettings>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

/// `[mail]`; each field's environment variable is `LADDER_MAIL__<FIELD>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub file_dir: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: String,
    pub smtp_password: String,
    /// Parsed once, here: a bad address stops Ladder with one line.
    #[serde(deserialize_with = "mailbox")]
    pub from: lettre::message::Mailbox,
    pub max_attempts: u32,
    pub poll_interval_ms: u64,
}

/// `[webhooks]`; each field's environment variable is `LADDER_WEBHOOKS__<FIELD>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub allow_private_targets: bool,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
    pub poll_interval_ms: u64,
    pub keep_days: u32,
}

/// `[jobs]`: cron schedules (with seconds); empty disables a job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub enabled: bool,
    pub outbox: String,
    pub expire: String,
    pub remind: String,
    pub end_grants: String,
    pub digest: String,
    pub sessions: String,
}

/// One `[[promotions]]` track, as written in config; see `promotions::Track`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackSettings {
    pub name: String,
    pub from_group: String,
    pub to_group: String,
    pub approver_group: String,
    #[serde(default = "one")]
    pub approvals_required: u32,
    #[serde(default = "yes")]
    pub reason_required: bool,
    #[serde(default)]
    pub pending_expires_after: String,
    #[serde(default)]
    pub remind_after: String,
    #[serde(default)]
    pub grant_duration: String,
}

fn mailbox<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<lettre::message::Mailbox, D::Error> {
    let raw = String::deserialize(deserializer)?;
    raw.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{raw:?} is not an address like \"Ladder <ladder@example.com>\""
        ))
    })
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// `[api]`; each field's environment variable is `LADDER_API__<FIELD>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Requests a second each token may make, on average; 0: no limit.
    pub requests_per_second: u32,
    /// Requests a token may make at once before the average applies.
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`. Env: `LADDER_DATABASE__URL`.
    pub url: String,
    /// Pool size. Env: `LADDER_DATABASE__MAX_CONNECTIONS`.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address. Env: `LADDER_SERVER__ADDRESS`.
    pub address: String,
    /// Base URL for links in emails. Env: `LADDER_SERVER__PUBLIC_URL`.
    pub public_url: String,
    /// Secure flag on the session cookie. Env: `LADDER_SERVER__SECURE_COOKIES`.
    pub secure_cookies: bool,
    /// Idle lifetime of a session. Env: `LADDER_SERVER__SESSION_DAYS`.
    pub session_days: u32,
    /// Per address and username together; see `accounts::sign_in::login_limit`.
    /// Env: `LADDER_SERVER__LOGIN_ATTEMPTS_PER_MINUTE`.
    pub login_attempts_per_minute: u32,
    /// Env: `LADDER_SERVER__REQUEST_TIMEOUT_SECS`.
    pub request_timeout_secs: u64,
    /// Keys session fingerprints and CSRF tokens; empty: generated once and
    /// kept in the database. Env: `LADDER_SERVER__SECRET_KEY`.
    pub secret_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSettings {
    /// Users whose effective permissions are cached per process; 0 disables.
    /// Env: `LADDER_PERMISSIONS__CACHE_SIZE`.
    pub cache_size: usize,
}

/// A resource declared in config, e.g. `app = "blog"`, `model = "post"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    pub app: String,
    pub model: String,
    /// `[codename, human name]` pairs beyond the four defaults.
    #[serde(default)]
    pub permissions: Vec<(String, String)>,
}

impl Settings {
    /// Loads defaults, then `LADDER_CONFIG`, then `LADDER_<SECTION>__<KEY>`.
    pub fn load() -> Result<Settings, String> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Ok(path) = std::env::var("LADDER_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(format!("LADDER_CONFIG: no such file: {path}"));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only LADDER_<SECTION>__<KEY>: LADDER_CONFIG and LADDER_DEMO_PASSWORD are not settings.
        figment = figment.merge(
            Env::prefixed("LADDER_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        Self::from_figment(figment)
    }

    /// Built-in defaults only, with the database URL replaced; for tests and tools.
    pub fn with_database_url(url: &str) -> Settings {
        let figment = Figment::from(Toml::string(DEFAULTS)).merge(("database.url", url));
        Self::from_figment(figment).expect("built-in defaults are valid")
    }

    fn from_figment(figment: Figment) -> Result<Settings, String> {
        let settings: Settings = figment.extract().map_err(|e| {
            // figment can report several errors; the first names the key and source.
            let first = e.into_iter().next().map(|e| e.to_string());
            format!("configuration: {}", first.unwrap_or_default())
        })?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), String> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(format!(
                "configuration: database.url must start with sqlite: or postgres://, got {url:?}"
            ));
        }
        if self.server.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "configuration: server.address must be host:port with an IP host, got {:?}",
                self.server.address
            ));
        }
        if self.server.login_attempts_per_minute == 0 || self.server.session_days == 0 {
            return Err(
                "configuration: server.login_attempts_per_minute and server.session_days must be at least 1"
                    .into(),
            );
        }
        if self.database.max_connections == 0 {
            return Err("configuration: database.max_connections must be at least 1".into());
        }
        if self.mail.max_attempts == 0 || self.mail.poll_interval_ms == 0 {
            return Err(
                "configuration: mail.max_attempts and mail.poll_interval_ms must be at least 1"
                    .into(),
            );
        }
        let hooks = &self.webhooks;
        if hooks.max_attempts == 0
            || hooks.timeout_ms == 0
            || hooks.poll_interval_ms == 0
            || hooks.retry_base_seconds == 0
            || hooks.keep_days == 0
        {
            return Err(
                "configuration: webhooks.max_attempts, timeout_ms, poll_interval_ms, keep_days and \
                 retry_base_seconds must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }
}
