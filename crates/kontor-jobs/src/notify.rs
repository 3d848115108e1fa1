//! Telling whoever asked that their job finished: in the console's notifications and by
//! e-mail. The event itself is an outbox row written with the job's end (see
//! `kontor_store::OutboxItem`); this module turns it into words and delivers it. The in-app
//! notification appears exactly once; the e-mail is sent at least once (twice only if the
//! process dies between sending it and recording that it was sent: the repeat replaces the
//! first in the outbox folder, and carries the same `Message-ID` over SMTP). A failure to send mail is
//! logged and retried; it never fails the job.

use crate::Jobs;
use kontor_domain::time::{iso, now_ms};
use kontor_store::{
    Account, Backup, InApp, Move, OutboxItem, Store, OUTBOX_BACKUP_FAILED, OUTBOX_BACKUP_READY,
    OUTBOX_IMPORT_FINISHED, OUTBOX_MOVE_DONE, OUTBOX_MOVE_FAILED, OUTBOX_MOVE_SCHEDULED,
    OUTBOX_MOVE_TOMORROW, OUTBOX_MOVE_WEEK, OUTBOX_SALESFORCE_UNINSTALLED,
};

/// How long one dispatcher holds an e-mail before another may send it.
const MAIL_CLAIM_MS: i64 = 60_000;
/// An e-mail that could not be sent for this long is given up (the in-app one stays).
const MAIL_GIVE_UP_MS: i64 = 24 * 3600 * 1000;

/// What to tell one user.
struct Message {
    user_id: i64,
    email: String,
    title: String,
    body: String,
    link: String,
    /// Subject and text of the e-mail, if one goes out.
    mail: Option<(String, String)>,
}

async fn user(store: &Store, account: i64, user_id: Option<i64>) -> Option<(i64, String)> {
    let user_id = user_id?;
    let users = store.users(account).await.ok()?;
    let u = users.into_iter().find(|u| u.id == user_id && u.active)?;
    Some((u.id, u.email))
}

fn backup_ready(jobs: &Jobs, account: &Account, backup: &Backup, to: (i64, String)) -> Message {
    let console = format!("/app/settings/backups#backup-{}", backup.id);
    let expires = backup.expires_at.map(iso).unwrap_or_default();
    let mail = jobs.download_url(account.id, backup).map(|url| {
        (
            format!("Your kontor backup of {} is ready", account.name),
            format!(
                "Hello,\n\nthe backup you asked for ({} records of {}, as of {}) is ready.\n\nDownload it here until {expires}:\n{url}\n\nThe archive includes the values of sensitive properties. Anyone with this link can download it until then: do not forward it. After {expires} the file is deleted.\n\nYou can also download it from Settings > Data Management > Backup:\n{}{console}\n\n-- kontor\n",
                backup.rows.unwrap_or(0),
                account.name,
                backup.snapshot_at.map(iso).unwrap_or_default(),
                jobs.public_url.trim_end_matches('/'),
            ),
        )
    });
    Message {
        user_id: to.0,
        email: to.1,
        title: "Your backup is ready".into(),
        body: format!(
            "Backup {} of {} is ready to download until {expires}. It includes sensitive property values.",
            backup.id, account.name
        ),
        link: console,
        mail,
    }
}

fn backup_failed(account: &Account, backup: &Backup, to: (i64, String)) -> Message {
    let reason = backup.error.clone().unwrap_or_default();
    Message {
        user_id: to.0,
        email: to.1,
        title: "Your backup failed".into(),
        body: format!(
            "Backup {} failed: {reason}. You can ask for a new one now.",
            backup.id
        ),
        link: "/app/settings/backups".into(),
        mail: Some((
            format!("Your kontor backup of {} failed", account.name),
            format!("Hello,\n\nbackup {} failed: {reason}\n\nA failed backup does not count against your backup allowance: you can ask for a new one now.\n\n-- kontor\n", backup.id),
        )),
    }
}

fn import_finished(jobs: &Jobs, imp: &kontor_store::Import, to: (i64, String)) -> Message {
    let failed = imp.state == kontor_store::imports::FAILED;
    let title = match (imp.is_restore(), failed) {
        (true, false) => "Your restore finished",
        (true, true) => "Your restore failed",
        (false, false) => "Your import finished",
        (false, true) => "Your import failed",
    };
    let body = if failed {
        format!(
            "{} failed: {}",
            imp.name,
            imp.error.clone().unwrap_or_default()
        )
    } else {
        format!(
            "{} finished: {} created, {} updated, {} unchanged, {} conflicts, {} rows rejected.",
            imp.name, imp.created, imp.updated, imp.unchanged, imp.conflicts, imp.errors
        )
    };
    let link = format!("/app/imports/{}", imp.id);
    let text = format!(
        "Hello,\n\n{body}\n\nSee the details, and any rejected rows, here:\n{}{link}\n\n-- kontor\n",
        jobs.public_url.trim_end_matches('/')
    );
    Message {
        user_id: to.0,
        email: to.1,
        title: title.into(),
        mail: Some((format!("{title}: {}", imp.name), text)),
        body,
        link,
    }
}

/// What a super admin is told about a data move.
fn move_message(
    jobs: &Jobs,
    account: &Account,
    mv: &Move,
    kind: &str,
    to: (i64, String),
) -> Message {
    let region = mv.to.label();
    let start = iso(mv.start_at);
    let link = "/app/settings/account/data-hosting".to_string();
    let (title, body) = match kind {
        OUTBOX_MOVE_SCHEDULED => (
            format!("Data move to {region} scheduled"),
            format!("{}'s data is scheduled to move to {region}, starting {start}. It can be cancelled or moved to another date until {} hours before. Imports are paused from 24 hours before the start until the move ends.", account.name, jobs.policy.cancel_hours),
        ),
        OUTBOX_MOVE_WEEK => (
            format!("Data move to {region} this week"),
            format!("{}'s data moves to {region} this week, starting {start}. The account stays usable during the move but for a short final step.", account.name),
        ),
        OUTBOX_MOVE_TOMORROW => (
            format!("Data move to {region} tomorrow"),
            format!("{}'s data moves to {region} tomorrow, starting {start}. Imports are paused until the move ends.", account.name),
        ),
        OUTBOX_MOVE_DONE => (
            format!("{}'s data now lives in {region}", account.name),
            format!(
                "The data move is complete: {}'s data now lives in {region}. The account was closed for {:.1} seconds. See the follow-up checklist on the Data hosting page.",
                account.name,
                mv.frozen_ms(now_ms()).unwrap_or(0) as f64 / 1000.0
            ),
        ),
        _ => (
            format!("Data move to {region} failed"),
            format!(
                "The data move of {} to {region} failed, and its data stays in {}: {} It can be scheduled again.",
                account.name,
                mv.from.label(),
                mv.error.clone().unwrap_or_default()
            ),
        ),
    };
    let text = format!(
        "Hello,\n\n{body}\n\nData hosting:\n{}{link}\n\n-- kontor\n",
        jobs.public_url.trim_end_matches('/')
    );
    Message {
        user_id: to.0,
        email: to.1,
        mail: Some((title.clone(), text)),
        title,
        body,
        link,
    }
}

/// The uninstall's notice: with Salesforce-only owners whose records need a new owner, the
/// subject asks to reassign them and the text gives the steps.
fn salesforce_uninstalled(
    jobs: &Jobs,
    account: &Account,
    u: &kontor_store::SalesforceUninstall,
    to: (i64, String),
) -> Message {
    let base = jobs.public_url.trim_end_matches('/');
    let owned = u
        .outcome
        .as_ref()
        .and_then(|o| o.get("ownedBySalesforceOnly"))
        .and_then(|o| o.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(t, n)| Some((t.clone(), n.as_i64()?)))
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let kept = if u.keep_data {
        "The integration's settings, mappings, id crosswalk and owner map are kept for 48 hours: connecting the same Salesforce org again within that time re-links the records instead of duplicating them. After that they are deleted and cannot be recovered."
    } else {
        "The integration's settings, mappings, id crosswalk and owner map were deleted at once and cannot be recovered."
    };
    let summary = u
        .outcome
        .as_ref()
        .and_then(|o| o["summary"].as_str())
        .unwrap_or_default()
        .to_string();
    if owned.is_empty() {
        let link = "/app/settings/integrations/salesforce".to_string();
        let title = "The Salesforce integration was uninstalled".to_string();
        let body = format!("{summary} {kept}");
        let text = format!("Hello,\n\nthe Salesforce integration of {} was uninstalled. {body}\n\n{base}{link}\n\n-- kontor\n", account.name);
        return Message {
            user_id: to.0,
            email: to.1,
            mail: Some((title.clone(), text)),
            title,
            body,
            link,
        };
    }
    let link = "/app/settings/integrations/salesforce/owners".to_string();
    let counts = owned
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let title = "Reassign contacts, companies and deals owned by Salesforce owners".to_string();
    let body = format!("The Salesforce integration was uninstalled. {counts} are owned by owners that came from Salesforce and have no user here: reassign them to users.");
    let text = format!(
        "Hello,\n\nthe Salesforce integration of {} was uninstalled. {summary}\n\n{counts} are still owned by owners that came from Salesforce and have no user in kontor. Reassign them to owners who are users:\n\n1. Open Settings > Integrations > Salesforce > Reassign owners:\n   {base}{link}\n2. For each Salesforce owner, check the proposed user (matched by e-mail, then by name) or choose another, and click \"Reassign records\". The reassignment runs in the background and can be reverted from the same page.\n3. When it has finished, click \"Go to owner cleanup page\", then \"Remove Salesforce owners\", and confirm. An owner is removed only when no record references it any more.\n\n{kept}\n\n-- kontor\n",
        account.name
    );
    Message {
        user_id: to.0,
        email: to.1,
        mail: Some((title.clone(), text)),
        title,
        body,
        link,
    }
}

/// The words of an event, or `None` when there is nobody to tell (no requester, or they
/// left the account).
async fn render(jobs: &Jobs, store: &Store, ev: &OutboxItem) -> anyhow::Result<Option<Message>> {
    let Some(account) = jobs.dir.account(ev.account_id).await? else {
        return Ok(None);
    };
    Ok(match ev.kind.as_str() {
        OUTBOX_BACKUP_READY | OUTBOX_BACKUP_FAILED => {
            let Some(b) = store.backup(account.id, ev.target_id).await? else {
                return Ok(None);
            };
            let Some(to) = user(store, account.id, b.requested_by).await else {
                return Ok(None);
            };
            Some(if ev.kind == OUTBOX_BACKUP_READY {
                backup_ready(jobs, &account, &b, to)
            } else {
                backup_failed(&account, &b, to)
            })
        }
        OUTBOX_IMPORT_FINISHED => {
            let Some(imp) = store.import(account.id, ev.target_id).await? else {
                return Ok(None);
            };
            let Some(to) = user(store, account.id, imp.created_by).await else {
                return Ok(None);
            };
            Some(import_finished(jobs, &imp, to))
        }
        OUTBOX_MOVE_SCHEDULED
        | OUTBOX_MOVE_WEEK
        | OUTBOX_MOVE_TOMORROW
        | OUTBOX_MOVE_DONE
        | OUTBOX_MOVE_FAILED => {
            let Some(mv) = jobs.dir.get_move(ev.target_id).await? else {
                return Ok(None);
            };
            let Some(to) = user(store, account.id, ev.recipient).await else {
                return Ok(None);
            };
            Some(move_message(jobs, &account, &mv, &ev.kind, to))
        }
        OUTBOX_SALESFORCE_UNINSTALLED => {
            let Some(u) = store.salesforce_uninstall(account.id, ev.target_id).await? else {
                return Ok(None);
            };
            let Some(to) = user(store, account.id, ev.recipient).await else {
                return Ok(None);
            };
            Some(salesforce_uninstalled(jobs, &account, &u, to))
        }
        other => {
            tracing::warn!(kind = other, "an outbox event of an unknown kind");
            None
        }
    })
}

/// Delivers one event: whichever of its in-app and e-mail parts is not done yet.
pub(crate) async fn deliver(jobs: &Jobs, store: &Store, ev: &OutboxItem) -> anyhow::Result<()> {
    let msg = render(jobs, store, ev).await?;
    if ev.in_app_at.is_none() {
        let note = msg.as_ref().map(|m| InApp {
            user_id: m.user_id,
            title: &m.title,
            body: &m.body,
            link: Some(&m.link),
        });
        store.deliver_in_app(ev, note).await?;
    }
    if ev.mailed_at.is_some() {
        return Ok(());
    }
    let mail = msg.as_ref().and_then(|m| Some((m, m.mail.as_ref()?)));
    let (Some(mailer), Some((m, (subject, text)))) = (&jobs.mailer, mail) else {
        store.outbox_mailed(ev).await?;
        return Ok(());
    };
    if !store.claim_outbox_mail(ev, MAIL_CLAIM_MS).await? {
        return Ok(());
    }
    // Keyed by the event: sent again after a crash between sending and recording it, it
    // replaces the outbox file (and keeps its Message-ID over SMTP).
    let key = format!(
        "kontor-notice-{}-{}-{}",
        ev.account_id, ev.id, ev.created_at
    );
    match mailer.send_once(&key, &m.email, subject, text).await {
        Ok(()) => store.outbox_mailed(ev).await?,
        Err(e) if now_ms() - ev.created_at > MAIL_GIVE_UP_MS => {
            tracing::error!(error = %e, to = %m.email, kind = %ev.kind, "giving up an e-mail");
            store.outbox_mailed(ev).await?;
        }
        // The claim lapses and a later round tries again.
        Err(e) => tracing::warn!(error = %e, to = %m.email, kind = %ev.kind, "job e-mail"),
    }
    Ok(())
}
