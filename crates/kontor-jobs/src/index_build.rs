//! The search index build job (see `kontor_store::Store::index_build_batch`): a batch of
//! records per transaction, so a runner that dies leaves the build where its last batch ended.

use crate::Jobs;
use anyhow::Result;
use kontor_store::{Job, Store};

/// Records per transaction.
const BATCH: i64 = 1_000;

pub(crate) async fn run(jobs: &Jobs, store: &Store, job: &Job) -> Result<()> {
    if job.attempts > crate::backup::MAX_ATTEMPTS {
        let msg = format!(
            "gave up after {} attempts that did not finish",
            crate::backup::MAX_ATTEMPTS
        );
        store.fail_index_build(job, &jobs.node, &msg).await?;
        return Ok(());
    }
    let total = store
        .count_live(
            job.account_id,
            job.payload["objectType"].as_str().unwrap_or_default(),
        )
        .await?;
    let mut done = 0;
    loop {
        if !jobs.renew(store, job, done, total).await? {
            return Ok(());
        }
        match store.index_build_batch(job, &jobs.node, BATCH).await? {
            None => break,
            Some(-1) => return Ok(()),
            Some(n) => done = n,
        }
    }
    tracing::info!(
        account = job.account_id,
        object_type = %job.payload["objectType"],
        property = %job.payload["property"],
        records = done,
        "search index built"
    );
    Ok(())
}
