//! `kontor`: the server and its administration commands in one binary.

/// `println!` for a command's output: when its reader stops early (`kontor migration list |
/// head -1`), the command ends quietly, as Unix tools do, instead of panicking on the broken
/// pipe. (Restoring the default `SIGPIPE` action would need `unsafe`, and must not reach the
/// server's sockets.)
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("writing to stdout: {e}");
        }
    }};
}

mod admin_cli;
mod backup_cli;
mod config;
mod demo;
mod follow;
mod http;
mod keyfile;
mod migration_cli;
mod private_files;
mod restore_cli;
mod salesforce_cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::{Config, GlobalOpts};

#[derive(Debug, Parser)]
#[command(
    name = "kontor",
    version,
    about = "Self-hostable CRM data platform with a HubSpot-compatible API"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KONTOR_LISTEN")]
        listen: Option<String>,
        /// Create (once) and print a demo account filled with sample CRM data.
        #[arg(long)]
        demo: bool,
    },
    /// Exit 0 when the server at the configured address answers /healthz.
    Healthcheck {
        #[arg(long, env = "KONTOR_LISTEN")]
        listen: Option<String>,
    },
    /// Restores from backups: plan, apply, revert, list.
    Restore {
        #[command(subcommand)]
        command: restore_cli::RestoreCommand,
    },
    /// Backups: create, list, download and verify.
    Backup {
        #[command(subcommand)]
        command: backup_cli::BackupCommand,
    },
    /// Data moves between regions: schedule, list, show, cancel, run.
    Migration {
        #[command(subcommand)]
        command: migration_cli::MigrationCommand,
    },
    /// Accounts, users and tokens.
    Admin {
        #[command(subcommand)]
        command: admin_cli::AdminCommand,
    },
}

fn main() -> std::process::ExitCode {
    // Before any thread or file exists: whatever kontor writes is private to its user.
    private_files::restrict_new_files();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KONTOR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve { listen, demo } => {
            let config = Config::load(&cli.global, listen)?;
            serve(config, demo).await?;
        }
        Command::Healthcheck { listen } => {
            let config = Config::load(&cli.global, listen)?;
            return Ok(if healthcheck(&config.listen).await {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            });
        }
        Command::Backup { command } => {
            let config = Config::load(&cli.global, None)?;
            return backup_cli::run(&config, command).await;
        }
        Command::Restore { command } => {
            let config = Config::load(&cli.global, None)?;
            return restore_cli::run(&config, command).await;
        }
        Command::Migration { command } => {
            let config = Config::load(&cli.global, None)?;
            return migration_cli::run(&config, command).await;
        }
        Command::Admin { command } => {
            let config = Config::load(&cli.global, None)?;
            let dir = config.open().await?;
            admin_cli::run(&dir, &config, command).await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn healthcheck(listen: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = listen.replace("0.0.0.0", "127.0.0.1");
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        s.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

async fn serve(mut config: Config, demo: bool) -> Result<()> {
    tracing::info!(?config, "starting");
    let dir = std::sync::Arc::new(config.open().await?);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Listening on port 0 without a public URL: links (e-mails, OAuth callbacks) name the
    // port actually bound.
    if config.public_url == format!("http://{}", config.listen) {
        config.public_url = format!("http://{addr}");
    }
    if demo {
        let creds = demo::ensure(&dir).await?;
        out!("kontor is running at http://{addr}");
        out!(
            "demo account:     {} (id {})",
            creds.account_name,
            creds.account_id
        );
        out!("super admin:      {}", creds.email);
        out!("password:         {}", creds.password);
        out!("API token:        {}", creds.token);
    } else {
        out!("kontor is running at http://{addr}");
    }
    let keys = std::sync::Arc::new(keyfile::load(&config)?);
    let jobs = std::sync::Arc::new(config.jobs(dir.clone(), keys.clone())?);
    tracing::info!(mail = %jobs.mailer.as_ref().map(|m| m.describe()).unwrap_or_default(), "notifications");
    let (stop_jobs, stop_rx) = tokio::sync::watch::channel(false);
    // Nodes that run jobs also send webhooks.
    let sender = (config.job_workers > 0).then(|| {
        tokio::spawn(kontor_server::webhooks::deliver::run(
            dir.clone(),
            keys,
            config.webhooks.clone(),
            stop_rx.clone(),
        ))
    });
    let salesforce = std::sync::Arc::new(config.salesforce.clone());
    let sync = (config.job_workers > 0).then(|| {
        tokio::spawn(kontor_server::salesforce::sync::run(
            dir.clone(),
            jobs.keys.clone(),
            salesforce.clone(),
            stop_rx.clone(),
        ))
    });
    let runner = tokio::spawn(jobs.clone().run(stop_rx));
    let state = kontor_server::AppState {
        dir,
        cookie_secure: config.cookie_secure,
        jobs,
        sign_in_limiter: std::sync::Arc::new(kontor_server::ClientLimiter::new(
            config.sign_in_per_client_per_minute,
            config.trusted_proxies.clone(),
        )),
        submission_limiter: std::sync::Arc::new(kontor_server::ClientLimiter::new(
            config.form_submissions_per_client_per_minute,
            config.trusted_proxies.clone(),
        )),
        api_limiter: std::sync::Arc::new(kontor_server::rate::ApiLimiter::new(config.api_limits)),
        webhooks: std::sync::Arc::new(config.webhooks.clone()),
        salesforce,
    };
    let app = kontor_server::app(state, config.body_limit, config.request_timeout);
    let limits = http::Limits {
        header_read_timeout: config.header_read_timeout,
    };
    http::serve(listener, app, limits, async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    })
    .await?;
    // A job cut short here is taken up again by the next runner once its lease lapses.
    let _ = stop_jobs.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), runner).await;
    for task in [sender, sync].into_iter().flatten() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
