//! Telling the super admin who asked that their backup is ready (or failed): in the console's
//! notifications and by e-mail. A failure to send mail is logged; it never fails the backup.

use crate::Jobs;
use kontor_domain::time::iso;
use kontor_store::{Account, Backup, Store};

async fn recipient(store: &Store, account: &Account, backup: &Backup) -> Option<(i64, String)> {
    let user_id = backup.requested_by?;
    let users = store.users(account.id).await.ok()?;
    let u = users.into_iter().find(|u| u.id == user_id && u.active)?;
    Some((u.id, u.email))
}

pub(crate) async fn backup_ready(jobs: &Jobs, store: &Store, account: &Account, backup: &Backup) {
    let Some((user_id, email)) = recipient(store, account, backup).await else {
        return;
    };
    let console = format!("/app/settings/backups#backup-{}", backup.id);
    let expires = backup.expires_at.map(iso).unwrap_or_default();
    if let Err(e) = store
        .notify(
            account.id,
            user_id,
            "Your backup is ready",
            &format!(
                "Backup {} of {} is ready to download until {expires}. It includes sensitive property values.",
                backup.id, account.name
            ),
            Some(&console),
        )
        .await
    {
        tracing::warn!(error = %e, "in-app notification");
    }
    let (Some(mailer), Some(url)) = (&jobs.mailer, jobs.download_url(account.id, backup)) else {
        return;
    };
    let body = format!(
        "Hello,\n\nthe backup you asked for ({} records of {}, as of {}) is ready.\n\nDownload it here until {expires}:\n{url}\n\nThe archive includes the values of sensitive properties. Anyone with this link can download it until then: do not forward it. After {expires} the file is deleted.\n\nYou can also download it from Settings > Data Management > Backup:\n{}{console}\n\n-- kontor\n",
        backup.rows.unwrap_or(0),
        account.name,
        backup.snapshot_at.map(iso).unwrap_or_default(),
        jobs.public_url.trim_end_matches('/'),
    );
    if let Err(e) = mailer
        .send(
            &email,
            &format!("Your kontor backup of {} is ready", account.name),
            &body,
        )
        .await
    {
        tracing::warn!(error = %e, to = %email, "backup e-mail");
    }
}

pub(crate) async fn backup_failed(jobs: &Jobs, store: &Store, account: &Account, backup: &Backup) {
    let Some((user_id, email)) = recipient(store, account, backup).await else {
        return;
    };
    let reason = backup.error.clone().unwrap_or_default();
    let _ = store
        .notify(
            account.id,
            user_id,
            "Your backup failed",
            &format!(
                "Backup {} failed: {reason}. You can ask for a new one now.",
                backup.id
            ),
            Some("/app/settings/backups"),
        )
        .await;
    if let Some(mailer) = &jobs.mailer {
        let _ = mailer
            .send(
                &email,
                &format!("Your kontor backup of {} failed", account.name),
                &format!("Hello,\n\nbackup {} failed: {reason}\n\nA failed backup does not count against your backup allowance: you can ask for a new one now.\n\n-- kontor\n", backup.id),
            )
            .await;
    }
}

/// Tells whoever started an import (or a restore) that it finished, in the console and by
/// e-mail.
pub(crate) async fn import_finished(
    jobs: &Jobs,
    store: &Store,
    account: &Account,
    imp: &kontor_store::Import,
) {
    let Some(user_id) = imp.created_by else {
        return;
    };
    let Ok(users) = store.users(account.id).await else {
        return;
    };
    let Some(user) = users.into_iter().find(|u| u.id == user_id && u.active) else {
        return;
    };
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
    if let Err(e) = store
        .notify(account.id, user_id, title, &body, Some(&link))
        .await
    {
        tracing::warn!(error = %e, "in-app notification");
    }
    if let Some(mailer) = &jobs.mailer {
        let text = format!(
            "Hello,\n\n{body}\n\nSee the details, and any rejected rows, here:\n{}{link}\n\n-- kontor\n",
            jobs.public_url.trim_end_matches('/')
        );
        if let Err(e) = mailer
            .send(&user.email, &format!("{title}: {}", imp.name), &text)
            .await
        {
            tracing::warn!(error = %e, to = %user.email, "import e-mail");
        }
    }
}
