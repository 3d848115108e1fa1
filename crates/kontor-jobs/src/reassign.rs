//! The owner reassignment job: moves the records of Salesforce-only owners to owners who are
//! users (or, for a revert, back), a batch per transaction (see
//! `kontor_store::Store::reassign_batch`), so that a runner that dies leaves it where its last
//! batch ended and the next claim goes on from there.

use crate::Jobs;
use anyhow::{Context, Result};
use kontor_domain::ChangeSource;
use kontor_store::{Actor, Job, Store};

/// Records moved per transaction.
const BATCH: i64 = 500;

pub(crate) async fn run(jobs: &Jobs, store: &Store, job: &Job) -> Result<()> {
    let id = job.payload["reassignment"]
        .as_i64()
        .context("reassignment job without its reassignment")?;
    let r = store
        .reassignment(job.account_id, id)
        .await?
        .context("reassignment job without its reassignment")?;
    let source = match job.payload["source"].as_str() {
        Some("UI") => ChangeSource::Ui,
        _ => ChangeSource::Api,
    };
    let actor = Actor {
        source,
        source_id: Some(format!("owner reassignment {id}")),
        user_id: r.created_by,
    };
    if job.attempts > crate::backup::MAX_ATTEMPTS {
        let msg = format!(
            "gave up after {} attempts that did not finish",
            crate::backup::MAX_ATTEMPTS
        );
        store
            .finish_reassignment(job, &jobs.node, &r, Some(&msg))
            .await?;
        return Ok(());
    }
    loop {
        let done = store
            .reassignment(job.account_id, id)
            .await?
            .map_or(0, |r| r.moved + r.skipped);
        if !jobs.renew(store, job, done, 0).await? {
            return Ok(());
        }
        match store
            .reassign_batch(job, &jobs.node, &r, &actor, BATCH)
            .await
        {
            Ok(None) => break,
            Ok(Some(true)) => {}
            Ok(Some(false)) => return Ok(()),
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(reassignment = id, error = %msg, "owner reassignment failed");
                store
                    .finish_reassignment(job, &jobs.node, &r, Some(&msg))
                    .await?;
                return Ok(());
            }
        }
    }
    store.finish_reassignment(job, &jobs.node, &r, None).await?;
    tracing::info!(
        account = job.account_id,
        reassignment = id,
        "owner reassignment done"
    );
    Ok(())
}
