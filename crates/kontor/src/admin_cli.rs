//! `kontor admin`: accounts, users and API tokens, for the operator. Everything that changes
//! an account is written to its audit log as done by `cli`.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use kontor_domain::{Region, Role, Tier};
use kontor_store::{Account, Directory, Store, User};
use std::io::{BufRead, IsTerminal};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// An account's Salesforce integration: status, pause, resume, a round now, sync errors.
    Salesforce {
        #[command(subcommand)]
        command: crate::salesforce_cli::SalesforceCommand,
    },
    /// The server key that seals two-factor and SSO secrets and signs download links.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// An account's search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Where the account's search index stands (tab-separated lines): `behind` and the
    /// change-log entries not yet indexed (searches match their records one by one until
    /// then), then `building`, object type, property, records done and of how many, for each
    /// property whose index is being built (searches on it check every record until then).
    Status {
        #[arg(long)]
        account: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new server key, seal every sealed secret again under it, and keep the old key as
    /// previous (download links already sent stay valid until they expire). Run it with the
    /// servers stopped, then give every node the new key files.
    Rotate,
    /// Seal every sealed secret again under the current key (after changing
    /// KONTOR_SECRET_KEY by hand, with the old key in KONTOR_PREVIOUS_SECRET_KEYS).
    Reseal,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its numeric id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "us", value_parser = ["us", "eu"])]
        region: String,
        #[arg(long, default_value = "starter", value_parser = ["starter", "professional", "enterprise"])]
        tier: String,
    },
    /// List accounts: id, region, tier, state, name (tab-separated).
    List,
    /// Set an account's lifecycle state. While `migrating`, its API calls answer 477 with
    /// Retry-After; while `suspended`, 403.
    SetState {
        #[arg(long)]
        account: i64,
        #[arg(long, value_parser = ["active", "migrating", "suspended"])]
        state: String,
    },
    /// Set (or with --off clear) an operator flag of an account. `payments`: the account uses
    /// payments, so its data cannot be moved to another region.
    SetFlag {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        flag: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List an account's users: id, role, status, two-factor, e-mail (tab-separated).
    List {
        #[arg(long)]
        account: i64,
    },
    /// Reset a user's password: the old one stops working, their sessions end, and a link
    /// that sets a new one (once, within an hour) is printed for you to pass on.
    ResetPassword {
        #[arg(long)]
        account: i64,
        /// The user's id or e-mail address.
        #[arg(long)]
        user: String,
    },
    /// Turn a user's two-factor authentication off (a lost phone and no recovery codes);
    /// their sessions end.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        account: i64,
        /// The user's id or e-mail address.
        #[arg(long)]
        user: String,
    },
    /// Create a user. The password is read from standard input when it is not a terminal,
    /// asked for on a terminal, or generated and printed with --generate-password.
    Create {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["super-admin", "admin", "user"])]
        role: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        #[arg(long)]
        generate_password: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List an account's API tokens: id, state, created, created by, name (tab-separated).
    List {
        #[arg(long)]
        account: i64,
    },
    /// Revoke an API token by its id (from `token list`).
    Revoke {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        token: i64,
    },
    /// Create an API token for an account; prints only the token.
    Create {
        #[arg(long)]
        account: i64,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(dir: &Directory, config: &Config, command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::Salesforce { command } => crate::salesforce_cli::run(dir, command).await?,
        AdminCommand::Key {
            command: KeyCommand::Rotate,
        } => crate::keyfile::rotate(dir, config).await?,
        AdminCommand::Key {
            command: KeyCommand::Reseal,
        } => crate::keyfile::reseal_command(dir, config).await?,
        AdminCommand::Account {
            command: AccountCommand::Create { name, region, tier },
        } => {
            let region = Region::parse(&region).context("region")?;
            let tier = Tier::parse(&tier).context("tier")?;
            let account = dir.create_account(&name, region, tier).await?;
            out!("{}", account.id);
        }
        AdminCommand::Account {
            command: AccountCommand::List,
        } => {
            for a in dir.accounts().await? {
                out!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.region.as_str(),
                    a.tier.as_str(),
                    a.state.as_str(),
                    a.name
                );
            }
        }
        AdminCommand::Account {
            command: AccountCommand::SetState { account, state },
        } => {
            let a = dir
                .account(account)
                .await?
                .with_context(|| format!("account {account} does not exist"))?;
            let state = kontor_store::LifecycleState::parse(&state);
            dir.set_state(a.id, state).await?;
            let details = serde_json::json!({"from": a.state.as_str(), "to": state.as_str()});
            dir.cell(&a)?
                .audit(
                    a.id,
                    None,
                    "cli",
                    "account.state",
                    &format!("account:{}", a.id),
                    details,
                )
                .await?;
            out!("{}\t{}", a.id, state.as_str());
        }
        AdminCommand::Account {
            command: AccountCommand::SetFlag { account, flag, off },
        } => {
            let a = dir
                .account(account)
                .await?
                .with_context(|| format!("account {account} does not exist"))?;
            dir.set_account_flag(a.id, &flag, !off).await?;
            let details = serde_json::json!({"flag": flag, "on": !off});
            dir.cell(&a)?
                .audit(
                    a.id,
                    None,
                    "cli",
                    "account.flag",
                    &format!("account:{}", a.id),
                    details,
                )
                .await?;
            out!("{}\t{}", a.id, dir.account_flags(a.id).await?.join(","));
        }
        AdminCommand::User {
            command:
                UserCommand::Create {
                    account,
                    email,
                    role,
                    first_name,
                    last_name,
                    generate_password: generate,
                },
        } => {
            let a = dir
                .account(account)
                .await?
                .with_context(|| format!("account {account} does not exist"))?;
            let role = Role::parse(&role).context("role")?;
            let password = if generate {
                crate::generate_password()
            } else if std::io::stdin().is_terminal() {
                let p = rpassword::prompt_password(format!("Password for {email}: "))?;
                if rpassword::prompt_password("Again: ")? != p {
                    bail!("the passwords differ");
                }
                p
            } else {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            let user = dir
                .create_user(&a, &email, &first_name, &last_name, role, &password)
                .await?;
            let details = serde_json::json!({"email": user.email, "role": role.as_str()});
            dir.cell(&a)?
                .audit(
                    a.id,
                    None,
                    "cli",
                    "user.create",
                    &format!("user:{}", user.id),
                    details,
                )
                .await?;
            out!("{}", user.id);
            if generate {
                out!("{password}");
            }
        }
        AdminCommand::Token {
            command: TokenCommand::Create { account, name },
        } => {
            let a = dir
                .account(account)
                .await?
                .with_context(|| format!("account {account} does not exist"))?;
            let (_, token) = dir.cell(&a)?.create_token(a.id, &name, None).await?;
            out!("{token}");
        }
        AdminCommand::User {
            command: UserCommand::List { account },
        } => {
            let (a, store) = account_of(dir, account).await?;
            let two_factor = store.users_with_second_factor(a.id).await?;
            for u in store.users(a.id).await? {
                out!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.role.as_str(),
                    if u.active { "active" } else { "deactivated" },
                    if two_factor.contains(&u.id) {
                        "2fa"
                    } else {
                        "-"
                    },
                    u.email
                );
            }
        }
        AdminCommand::User {
            command: UserCommand::ResetPassword { account, user },
        } => {
            let (a, store) = account_of(dir, account).await?;
            let u = user_of(store, a.id, &user).await?;
            if !u.active {
                bail!("user {} is deactivated: reactivate them first", u.email);
            }
            store.lock_password(a.id, u.id).await?;
            let token = store.create_password_reset(a.id, u.id).await?;
            store
                .audit(
                    a.id,
                    None,
                    "cli",
                    "user.password_reset_by_admin",
                    &format!("user:{}", u.id),
                    serde_json::json!({"email": u.email, "message": "Password reset by the operator; sessions ended; a link to set a new one issued"}),
                )
                .await?;
            out!(
                "{}/app/login/reset/{token}",
                config.public_url.trim_end_matches('/')
            );
        }
        AdminCommand::User {
            command: UserCommand::Reset2fa { account, user },
        } => {
            let (a, store) = account_of(dir, account).await?;
            let u = user_of(store, a.id, &user).await?;
            if !store.remove_second_factor(a.id, u.id).await? {
                bail!("{} has no two-factor authentication to reset", u.email);
            }
            store.end_sessions(a.id, u.id).await?;
            store
                .audit(
                    a.id,
                    None,
                    "cli",
                    "user.2fa_reset_by_admin",
                    &format!("user:{}", u.id),
                    serde_json::json!({"email": u.email, "message": "Two-factor authentication reset by the operator; sessions ended"}),
                )
                .await?;
            out!("{}\t2fa reset", u.id);
        }
        AdminCommand::Token {
            command: TokenCommand::List { account },
        } => {
            let (a, store) = account_of(dir, account).await?;
            let users = store.users(a.id).await?;
            for t in store.tokens(a.id).await? {
                let by = match t.created_by {
                    None => "operator".to_string(),
                    Some(id) => users
                        .iter()
                        .find(|u| u.id == id)
                        .map_or_else(|| format!("user {id}"), |u| u.email.clone()),
                };
                out!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    kontor_domain::time::iso(t.created_at),
                    by,
                    t.name
                );
            }
        }
        AdminCommand::Token {
            command: TokenCommand::Revoke { account, token },
        } => {
            let (a, store) = account_of(dir, account).await?;
            store.revoke_token(a.id, token, None).await?;
            out!("{token}\trevoked");
        }
        AdminCommand::Search {
            command: SearchCommand::Status { account },
        } => {
            let (a, store) = account_of(dir, account).await?;
            let status = store.index_status(a.id).await?;
            let types = store.object_types(a.id).await?;
            out!("behind\t{}", status.behind());
            for b in &status.builds {
                let name = types
                    .iter()
                    .find(|t| t.type_id == b.object_type)
                    .map_or(b.object_type.as_str(), |t| t.name.as_str());
                out!(
                    "building\t{name}\t{}\t{}\t{}",
                    b.property,
                    b.done.min(b.total),
                    b.total
                );
            }
        }
    }
    Ok(())
}

/// The account and the store of its cell.
async fn account_of(dir: &Directory, account: i64) -> Result<(Account, &Store)> {
    let a = dir
        .account(account)
        .await?
        .with_context(|| format!("account {account} does not exist"))?;
    let store = dir.cell(&a)?;
    Ok((a, store))
}

/// A user named by id or e-mail address.
async fn user_of(store: &Store, account: i64, user: &str) -> Result<User> {
    let wanted = user.trim().to_lowercase();
    store
        .users(account)
        .await?
        .into_iter()
        .find(|u| u.id.to_string() == wanted || u.email == wanted)
        .with_context(|| format!("account {account} has no user {user}"))
}
