//! Configuration, layered: built-in defaults, then the TOML file, then `KONTOR_*` environment
//! variables, then command-line flags (clap reads the flag or its variable; the file fills in
//! what neither gave).

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Configuration file (TOML); see kontor.example.toml.
    #[arg(long, global = true, env = "KONTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder of the embedded default (SQLite files and file stores).
    #[arg(long, global = true, env = "KONTOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL of the `us` region (default: SQLite in the data folder).
    #[arg(
        long,
        global = true,
        env = "KONTOR_DATABASE_US",
        hide_env_values = true
    )]
    pub database_us: Option<String>,
    /// PostgreSQL URL of the `eu` region (default: SQLite in the data folder).
    #[arg(
        long,
        global = true,
        env = "KONTOR_DATABASE_EU",
        hide_env_values = true
    )]
    pub database_eu: Option<String>,
    /// Database of the account directory (default: the `us` region's database when that is
    /// PostgreSQL, else `directory.db` in the data folder).
    #[arg(
        long,
        global = true,
        env = "KONTOR_DATABASE_DIRECTORY",
        hide_env_values = true
    )]
    pub database_directory: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    body_limit: Option<usize>,
    secret_key_file: Option<PathBuf>,
    cookie_secure: Option<bool>,
    /// Seconds a client has to send a request's headers (default 10).
    header_read_timeout_seconds: Option<u64>,
    /// Seconds a request may take, body included, before it is answered 408 (default 120).
    request_timeout_seconds: Option<u64>,
    /// Where users reach the server, for links in e-mails (default: `http://<listen>`).
    public_url: Option<String>,
    /// Root of the regions' file stores (default: `<data_dir>/regions`).
    files_dir: Option<PathBuf>,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    mail: MailFileConfig,
    #[serde(default)]
    jobs: JobsFileConfig,
    #[serde(default)]
    sign_in: SignInFileConfig,
    #[serde(default)]
    moves: MovesFileConfig,
    #[serde(default)]
    forms: FormsFileConfig,
    #[serde(default)]
    api_limits: ApiLimitsFileConfig,
    #[serde(default)]
    webhooks: WebhooksFileConfig,
    #[serde(default)]
    salesforce: SalesforceFileConfig,
    #[serde(default)]
    search: SearchFileConfig,
}

/// `[search]`: what searches keep in memory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchFileConfig {
    /// MiB of sort keys each database keeps in memory for sorted searches (default 256; 0:
    /// none, every sort reads its keys from the index).
    sort_key_memory_mb: Option<usize>,
}

/// `[salesforce]`: the operator's connected app in Salesforce, which accounts connect through.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesforceFileConfig {
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Default `https://login.salesforce.com`.
    login_url: Option<String>,
    /// Default `62.0`.
    api_version: Option<String>,
    /// Seconds between two sync rounds of a connection (default 300).
    interval_seconds: Option<u64>,
    /// Seconds a node's claim on a round lasts without renewal (default 60).
    claim_seconds: Option<u64>,
}

/// The `[salesforce]` settings; `KONTOR_SALESFORCE_*` variables win field by field.
fn salesforce_policy(file: SalesforceFileConfig) -> Result<kontor_server::salesforce::Policy> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let d = kontor_server::salesforce::Policy::default();
    let interval = match var("KONTOR_SALESFORCE_INTERVAL_SECONDS") {
        Some(v) => Some(
            v.parse::<u64>()
                .context("KONTOR_SALESFORCE_INTERVAL_SECONDS")?,
        ),
        None => file.interval_seconds,
    };
    let claim = match var("KONTOR_SALESFORCE_CLAIM_SECONDS") {
        Some(v) => Some(
            v.parse::<u64>()
                .context("KONTOR_SALESFORCE_CLAIM_SECONDS")?,
        ),
        None => file.claim_seconds,
    };
    let p = kontor_server::salesforce::Policy {
        claim: claim.map(std::time::Duration::from_secs).unwrap_or(d.claim),
        client_id: var("KONTOR_SALESFORCE_CLIENT_ID")
            .or(file.client_id)
            .unwrap_or_default(),
        client_secret: var("KONTOR_SALESFORCE_CLIENT_SECRET")
            .or(file.client_secret)
            .unwrap_or_default(),
        login_url: var("KONTOR_SALESFORCE_LOGIN_URL")
            .or(file.login_url)
            .unwrap_or(d.login_url),
        api_version: var("KONTOR_SALESFORCE_API_VERSION")
            .or(file.api_version)
            .unwrap_or(d.api_version),
        interval: interval
            .map(std::time::Duration::from_secs)
            .unwrap_or(d.interval),
    };
    p.check()
        .map_err(|m| anyhow::anyhow!("[salesforce]: {m}"))?;
    Ok(p)
}

/// `[webhooks]`: where accounts' webhooks may go and how they are retried.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFileConfig {
    /// Allow targets on this machine and private networks (default false).
    allow_private_targets: Option<bool>,
    /// Milliseconds before the first retry; each next one waits twice as long (default 60000).
    retry_base_ms: Option<u64>,
    /// Seconds a request may take (default 5).
    timeout_seconds: Option<u64>,
    /// Seconds a sender's claim on events lasts: after a crash they are sent again once it
    /// lapses (default 60).
    claim_seconds: Option<u64>,
}

/// The `[webhooks]` policy; `KONTOR_WEBHOOKS_*` variables win field by field.
fn webhooks_policy(file: WebhooksFileConfig) -> Result<kontor_server::webhooks::Policy> {
    use std::time::Duration;
    let var = |name: &str| -> Result<Option<u64>> {
        match std::env::var(name) {
            Ok(v) => Ok(Some(v.parse().with_context(|| name.to_string())?)),
            Err(_) => Ok(None),
        }
    };
    let d = kontor_server::webhooks::Policy::default();
    let allow = match std::env::var("KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS") {
        Ok(v) => matches!(v.as_str(), "1" | "true" | "yes"),
        Err(_) => file
            .allow_private_targets
            .unwrap_or(d.allow_private_targets),
    };
    let p = kontor_server::webhooks::Policy {
        allow_private_targets: allow,
        retry_base: var("KONTOR_WEBHOOKS_RETRY_BASE_MS")?
            .or(file.retry_base_ms)
            .map(Duration::from_millis)
            .unwrap_or(d.retry_base),
        timeout: var("KONTOR_WEBHOOKS_TIMEOUT_SECONDS")?
            .or(file.timeout_seconds)
            .map(Duration::from_secs)
            .unwrap_or(d.timeout),
        claim: var("KONTOR_WEBHOOKS_CLAIM_SECONDS")?
            .or(file.claim_seconds)
            .map(Duration::from_secs)
            .unwrap_or(d.claim),
    };
    anyhow::ensure!(
        !p.retry_base.is_zero() && !p.timeout.is_zero(),
        "webhooks.retry_base_ms and webhooks.timeout_seconds must be positive"
    );
    anyhow::ensure!(
        p.claim > p.timeout,
        "webhooks.claim_seconds must be longer than webhooks.timeout_seconds"
    );
    Ok(p)
}

/// `[api_limits]`: the API's rate limits per account tier (`[api_limits.<tier>]`); HubSpot's by
/// default (`kontor_server::rate::ApiLimits`), or none with `enabled = false`. Also taken from
/// `KONTOR_API_LIMITS`: `off`, or the same tables as TOML text, which wins field by field.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiLimitsFileConfig {
    enabled: Option<bool>,
    #[serde(default)]
    starter: TierLimitsFileConfig,
    #[serde(default)]
    professional: TierLimitsFileConfig,
    #[serde(default)]
    enterprise: TierLimitsFileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierLimitsFileConfig {
    per_ten_seconds: Option<u32>,
    per_day: Option<u32>,
    searches_per_second: Option<u32>,
}

/// The limits in force; `None` when they are off.
fn api_limits(file: ApiLimitsFileConfig) -> Result<Option<kontor_server::rate::ApiLimits>> {
    let env: ApiLimitsFileConfig = match std::env::var("KONTOR_API_LIMITS") {
        Ok(text) if text.trim() == "off" => return Ok(None),
        Ok(text) => toml::from_str(&text).context("KONTOR_API_LIMITS")?,
        Err(_) => ApiLimitsFileConfig::default(),
    };
    if !env.enabled.or(file.enabled).unwrap_or(true) {
        return Ok(None);
    }
    let defaults = kontor_server::rate::ApiLimits::default();
    let tier = |name: &str,
                base: kontor_server::rate::TierLimits,
                file: TierLimitsFileConfig,
                env: TierLimitsFileConfig|
     -> Result<kontor_server::rate::TierLimits> {
        let t = kontor_server::rate::TierLimits {
            per_ten_seconds: env
                .per_ten_seconds
                .or(file.per_ten_seconds)
                .unwrap_or(base.per_ten_seconds),
            per_day: env.per_day.or(file.per_day).unwrap_or(base.per_day),
            searches_per_second: env
                .searches_per_second
                .or(file.searches_per_second)
                .unwrap_or(base.searches_per_second),
        };
        anyhow::ensure!(
            t.per_ten_seconds >= 1 && t.per_day >= 1 && t.searches_per_second >= 1,
            "api_limits.{name}: every limit must be at least 1"
        );
        Ok(t)
    };
    Ok(Some(kontor_server::rate::ApiLimits {
        starter: tier("starter", defaults.starter, file.starter, env.starter)?,
        professional: tier(
            "professional",
            defaults.professional,
            file.professional,
            env.professional,
        )?,
        enterprise: tier(
            "enterprise",
            defaults.enterprise,
            file.enterprise,
            env.enterprise,
        )?,
    }))
}

/// `[forms]`: the public submission endpoint of the accounts' forms.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormsFileConfig {
    /// Submissions one client address may send a minute, to any form (HubSpot: 50 per
    /// 10 seconds).
    submissions_per_client_per_minute: Option<u32>,
}

/// `[moves]`: the rules of scheduling data moves between regions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MovesFileConfig {
    notice_days: Option<i64>,
    cancel_hours: Option<i64>,
    imports_closed_hours: Option<i64>,
    per_day: Option<i64>,
    blackout_dates: Option<Vec<String>>,
    /// `["us->eu"]` by default.
    routes: Option<Vec<String>>,
    start_hour_utc: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInFileConfig {
    per_client_per_minute: Option<u32>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailFileConfig {
    from: Option<String>,
    smtp_url: Option<String>,
    outbox_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFileConfig {
    lease_seconds: Option<u64>,
    compression_level: Option<u32>,
    workers: Option<usize>,
    per_account: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseConfig {
    directory: Option<String>,
    us: Option<String>,
    eu: Option<String>,
}

/// The configuration in force.
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub body_limit: usize,
    pub secret_key_file: PathBuf,
    pub cookie_secure: bool,
    /// A connection that has not sent a whole request head in this time is closed.
    pub header_read_timeout: std::time::Duration,
    /// A request not answered in this time (a slow body included) is answered 408.
    pub request_timeout: std::time::Duration,
    pub directory_url: String,
    pub us_url: String,
    pub eu_url: String,
    pub public_url: String,
    /// Region `r`'s file store is `<files_dir>/<r>/files`. Every node serving the same
    /// databases must see the same files (a shared folder).
    pub files_dir: PathBuf,
    pub mail_from: String,
    /// SMTP server URL; without one, mail goes to `outbox_dir` as `.eml` files.
    pub smtp_url: Option<String>,
    /// Where e-mails go without an SMTP server (`<data_dir>/outbox`). Nodes serving the same
    /// databases deliver each other's notifications: give them one shared folder.
    pub outbox_dir: PathBuf,
    pub job_lease_ms: i64,
    /// Sign-in requests (password, second factor, reset) one client address may send a minute.
    pub sign_in_per_client_per_minute: u32,
    /// Form submissions one client address may send a minute.
    pub form_submissions_per_client_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub compression_level: u32,
    /// Jobs this node runs at once.
    pub job_workers: usize,
    /// Jobs of one account this node runs at once.
    pub job_per_account: usize,
    /// The rules of scheduling data moves.
    pub moves: kontor_jobs::moving::Policy,
    /// The API's rate limits per tier; `None` when they are off.
    pub api_limits: Option<kontor_server::rate::ApiLimits>,
    /// Where webhooks may go and how they are retried.
    pub webhooks: kontor_server::webhooks::Policy,
    /// The connected app accounts reach Salesforce through.
    pub salesforce: kontor_server::salesforce::Policy,
    /// Bytes of property keys (for sorts and broad filters) each database keeps in memory
    /// (`[search] sort_key_memory_mb`).
    pub sort_key_memory: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Database URLs may carry passwords: never print them whole.
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("directory", &kontor_store::redact_url(&self.directory_url))
            .field("us", &kontor_store::redact_url(&self.us_url))
            .field("eu", &kontor_store::redact_url(&self.eu_url))
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

impl Config {
    pub fn load(g: &GlobalOpts, listen_flag: Option<String>) -> Result<Config> {
        let file: FileConfig = match &g.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading configuration file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing configuration file {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = g
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("kontor-data"));
        let listen = listen_flag
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let us_url = g
            .database_us
            .clone()
            .or(file.database.us)
            .unwrap_or_else(|| sqlite_url(&data_dir.join("regions/us/kontor.db")));
        let eu_url = g
            .database_eu
            .clone()
            .or(file.database.eu)
            .unwrap_or_else(|| sqlite_url(&data_dir.join("regions/eu/kontor.db")));
        let directory_url = g
            .database_directory
            .clone()
            .or(file.database.directory)
            .unwrap_or_else(|| {
                if us_url.starts_with("postgres") {
                    us_url.clone()
                } else {
                    sqlite_url(&data_dir.join("directory.db"))
                }
            });
        let public_url = std::env::var("KONTOR_PUBLIC_URL")
            .ok()
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        // Served over HTTPS (behind a proxy that ends TLS): cookies are `Secure` unless told not.
        let cookie_secure = match std::env::var("KONTOR_COOKIE_SECURE") {
            Ok(v) => matches!(v.as_str(), "1" | "true" | "yes"),
            Err(_) => file
                .cookie_secure
                .unwrap_or_else(|| public_url.starts_with("https://")),
        };
        let seconds = |env: &str, given: Option<u64>, default: u64| -> Result<u64> {
            let v = match std::env::var(env) {
                Ok(v) => v.parse().with_context(|| env.to_string())?,
                Err(_) => given.unwrap_or(default),
            };
            anyhow::ensure!(v >= 1, "{env} must be at least 1 second");
            Ok(v)
        };
        let header_read_timeout = std::time::Duration::from_secs(seconds(
            "KONTOR_HEADER_READ_TIMEOUT_SECONDS",
            file.header_read_timeout_seconds,
            10,
        )?);
        let request_timeout = std::time::Duration::from_secs(seconds(
            "KONTOR_REQUEST_TIMEOUT_SECONDS",
            file.request_timeout_seconds,
            120,
        )?);
        let smtp_url = std::env::var("KONTOR_SMTP_URL").ok().or(file.mail.smtp_url);
        let mail_from = std::env::var("KONTOR_MAIL_FROM")
            .ok()
            .or(file.mail.from)
            .unwrap_or_else(|| kontor_mail::DEFAULT_FROM.to_string());
        let lease_s = match std::env::var("KONTOR_JOB_LEASE_SECONDS") {
            Ok(v) => v.parse().context("KONTOR_JOB_LEASE_SECONDS")?,
            Err(_) => file.jobs.lease_seconds.unwrap_or(30),
        };
        let compression_level = file.jobs.compression_level.unwrap_or(1);
        anyhow::ensure!(
            compression_level <= 9,
            "jobs.compression_level must be 0 to 9"
        );
        let job_workers = match std::env::var("KONTOR_JOB_WORKERS") {
            Ok(v) => v.parse().context("KONTOR_JOB_WORKERS")?,
            Err(_) => file.jobs.workers.unwrap_or(3),
        };
        let job_per_account = file.jobs.per_account.unwrap_or(1);
        let sort_key_memory_mb: usize = match std::env::var("KONTOR_SEARCH_SORT_KEY_MEMORY_MB") {
            Ok(v) => v.parse().context("KONTOR_SEARCH_SORT_KEY_MEMORY_MB")?,
            Err(_) => file.search.sort_key_memory_mb.unwrap_or(256),
        };
        anyhow::ensure!(
            sort_key_memory_mb <= 1 << 20,
            "search.sort_key_memory_mb must be at most 1048576 (1 TiB)"
        );
        anyhow::ensure!(job_workers <= 64, "jobs.workers must be 0 to 64");
        anyhow::ensure!(job_per_account >= 1, "jobs.per_account must be at least 1");
        let outbox_dir = std::env::var_os("KONTOR_OUTBOX_DIR")
            .map(PathBuf::from)
            .or(file.mail.outbox_dir)
            .unwrap_or_else(|| data_dir.join("outbox"));
        let files_dir = std::env::var_os("KONTOR_FILES_DIR")
            .map(PathBuf::from)
            .or(file.files_dir)
            .unwrap_or_else(|| data_dir.join("regions"));
        let sign_in_per_client_per_minute =
            match std::env::var("KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE") {
                Ok(v) => v.parse().context("KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE")?,
                Err(_) => file.sign_in.per_client_per_minute.unwrap_or(30),
            };
        anyhow::ensure!(
            sign_in_per_client_per_minute >= 1,
            "sign_in.per_client_per_minute must be at least 1"
        );
        let form_submissions_per_client_per_minute =
            match std::env::var("KONTOR_FORM_SUBMISSIONS_PER_CLIENT_PER_MINUTE") {
                Ok(v) => v
                    .parse()
                    .context("KONTOR_FORM_SUBMISSIONS_PER_CLIENT_PER_MINUTE")?,
                Err(_) => file.forms.submissions_per_client_per_minute.unwrap_or(300),
            };
        anyhow::ensure!(
            form_submissions_per_client_per_minute >= 1,
            "forms.submissions_per_client_per_minute must be at least 1"
        );
        let moves = moves_policy(file.moves)?;
        let api_limits = api_limits(file.api_limits)?;
        let webhooks = webhooks_policy(file.webhooks)?;
        let salesforce = salesforce_policy(file.salesforce)?;
        Ok(Config {
            salesforce,
            sort_key_memory: sort_key_memory_mb << 20,
            moves,
            api_limits,
            webhooks,
            header_read_timeout,
            request_timeout,
            sign_in_per_client_per_minute,
            form_submissions_per_client_per_minute,
            trusted_proxies: file.sign_in.trusted_proxies.unwrap_or_default(),
            public_url,
            files_dir,
            outbox_dir,
            mail_from,
            smtp_url,
            job_lease_ms: (lease_s.max(1) * 1000) as i64,
            compression_level,
            job_workers,
            job_per_account,
            // Nodes of one deployment share one key (a mounted secret, say).
            secret_key_file: std::env::var_os("KONTOR_SECRET_KEY_FILE")
                .map(PathBuf::from)
                .or(file.secret_key_file)
                .unwrap_or_else(|| data_dir.join("secret.key")),
            data_dir,
            listen,
            body_limit: file.body_limit.unwrap_or(kontor_server::DEFAULT_BODY_LIMIT),
            cookie_secure,
            directory_url,
            us_url,
            eu_url,
        })
    }

    /// The job runner's settings for this node.
    pub fn jobs(
        &self,
        dir: std::sync::Arc<kontor_store::Directory>,
        keys: std::sync::Arc<kontor_jobs::keys::Keyring>,
    ) -> Result<kontor_jobs::Jobs> {
        let mailer = kontor_mail::Mailer::new(&kontor_mail::MailConfig {
            from: self.mail_from.clone(),
            smtp_url: self.smtp_url.clone(),
            outbox_dir: self.outbox_dir.clone(),
        })
        .context("mail configuration")?;
        let files = [kontor_domain::Region::Us, kontor_domain::Region::Eu]
            .into_iter()
            .map(|r| (r, self.files_dir.join(r.as_str()).join("files")))
            .collect();
        Ok(kontor_jobs::Jobs {
            dir,
            files,
            mailer: Some(mailer),
            public_url: self.public_url.clone(),
            keys,
            node: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            lease_ms: self.job_lease_ms,
            compression_level: self.compression_level,
            workers: self.job_workers,
            per_account: self.job_per_account,
            health: Default::default(),
            policy: self.moves.clone(),
        })
    }

    /// Opens the directory and every region's database, creating SQLite folders as needed.
    pub async fn open(&self) -> Result<kontor_store::Directory> {
        for region in ["us", "eu"] {
            std::fs::create_dir_all(self.data_dir.join("regions").join(region))
                .with_context(|| format!("creating data folder {}", self.data_dir.display()))?;
            let files = self.files_dir.join(region).join("files");
            std::fs::create_dir_all(&files)
                .with_context(|| format!("creating file store {}", files.display()))?;
        }
        crate::private_files::close_folder(&self.data_dir)?;
        crate::private_files::close_folder(&self.files_dir)?;
        let tuning = kontor_store::SearchTuning {
            sort_key_memory: self.sort_key_memory,
            ..Default::default()
        };
        let open = |url: String| async move {
            kontor_store::Store::open(&url)
                .await
                .map(|s| s.with_search_tuning(tuning))
                .with_context(|| format!("opening database {}", kontor_store::redact_url(&url)))
        };
        let directory = open(self.directory_url.clone()).await?;
        let us = if self.us_url == self.directory_url {
            directory.clone()
        } else {
            open(self.us_url.clone()).await?
        };
        let eu = if self.eu_url == self.us_url {
            us.clone()
        } else {
            open(self.eu_url.clone()).await?
        };
        let mut regions = std::collections::HashMap::new();
        regions.insert(kontor_domain::Region::Us, us);
        regions.insert(kontor_domain::Region::Eu, eu);
        Ok(kontor_store::Directory { directory, regions })
    }
}

fn moves_policy(file: MovesFileConfig) -> Result<kontor_jobs::moving::Policy> {
    let mut p = kontor_jobs::moving::Policy::default();
    let env_i64 = |name: &str, given: Option<i64>, default: i64| -> Result<i64> {
        let v = match std::env::var(name) {
            Ok(v) => v.parse().with_context(|| name.to_string())?,
            Err(_) => given.unwrap_or(default),
        };
        anyhow::ensure!(v >= 0, "{name} must not be negative");
        Ok(v)
    };
    p.notice_days = env_i64("KONTOR_MOVES_NOTICE_DAYS", file.notice_days, p.notice_days)?;
    p.cancel_hours = env_i64(
        "KONTOR_MOVES_CANCEL_HOURS",
        file.cancel_hours,
        p.cancel_hours,
    )?;
    p.imports_closed_hours = env_i64(
        "KONTOR_MOVES_IMPORTS_CLOSED_HOURS",
        file.imports_closed_hours,
        p.imports_closed_hours,
    )?;
    p.per_day = env_i64("KONTOR_MOVES_PER_DAY", file.per_day, p.per_day)?;
    p.start_hour_utc = file.start_hour_utc.unwrap_or(p.start_hour_utc);
    anyhow::ensure!(
        (0..24).contains(&p.start_hour_utc),
        "moves.start_hour_utc must be 0 to 23"
    );
    if let Some(days) = file.blackout_dates {
        for d in &days {
            anyhow::ensure!(
                kontor_domain::time::parse_instant(d).is_some() && d.len() == 10,
                "moves.blackout_dates: {d:?} is not a date (YYYY-MM-DD)"
            );
        }
        p.blackouts = days;
    }
    if let Some(routes) = file.routes {
        p.routes = routes
            .iter()
            .map(|r| {
                let (a, b) = r
                    .split_once("->")
                    .with_context(|| format!("moves.routes: {r:?} is not like \"us->eu\""))?;
                let region = |s: &str| {
                    kontor_domain::Region::parse(s.trim())
                        .with_context(|| format!("moves.routes: unknown region {s:?}"))
                };
                Ok((region(a)?, region(b)?))
            })
            .collect::<Result<_>>()?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(config: Option<PathBuf>) -> GlobalOpts {
        GlobalOpts {
            config,
            data_dir: None,
            database_us: None,
            database_eu: None,
            database_directory: None,
        }
    }

    #[test]
    fn defaults_are_the_embedded_store() {
        let c = Config::load(&opts(None), None).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert!(c.us_url.starts_with("sqlite://") && c.us_url.ends_with("regions/us/kontor.db"));
        assert!(c.directory_url.ends_with("directory.db"));
    }

    #[test]
    fn the_file_fills_in_and_flags_win() {
        let path =
            std::env::temp_dir().join(format!("kontor-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/kontor\"\n[database]\nus = \"postgres://u:secret@db/kontor\"\n").unwrap();
        let mut g = opts(Some(path.clone()));
        let c = Config::load(&g, None).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.us_url, "postgres://u:secret@db/kontor");
        assert_eq!(
            c.directory_url, c.us_url,
            "the directory follows a PostgreSQL us region"
        );
        assert!(c.eu_url.starts_with("sqlite:///srv/kontor/"));
        assert!(
            !format!("{c:?}").contains("secret"),
            "URLs are redacted when printed"
        );
        g.data_dir = Some(PathBuf::from("/elsewhere"));
        let c = Config::load(&g, Some("127.0.0.1:1".into())).unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        assert!(c.eu_url.starts_with("sqlite:///elsewhere/"));
        std::fs::write(&path, "lisen = 1\n").unwrap();
        assert!(Config::load(&g, None).is_err(), "unknown keys are refused");
        let _ = std::fs::remove_file(&path);
    }
}
