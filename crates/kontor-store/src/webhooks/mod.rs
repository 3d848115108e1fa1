//! Webhooks: an account's apps (a target URL, a client secret that signs each request), their
//! subscriptions to object events, and the events waiting for delivery or delivered (the
//! delivery log).
//!
//! The outbox is the change log itself: every write of records or associations appends to it
//! in the writing transaction, in commit order, so an event exists exactly when its write
//! committed. Each app keeps a cursor in the log; the fan-out (`fanout.rs`) turns the entries
//! past it into `webhook_events` rows for the app's active subscriptions and moves the cursor,
//! in one transaction. Delivery claims due rows, sends them and marks them, at least once.

mod fanout;

pub use fanout::{event_types_of, Attempt, WebhookEvent, EVENT_TYPES, MAX_DELIVERY_ATTEMPTS};

use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;

/// An app: where an account's events go, and the secret that signs them.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookApp {
    pub account_id: i64,
    pub id: i64,
    pub name: String,
    /// `None` until set (HubSpot's settings API can clear it): nothing is sent meanwhile,
    /// and the events wait.
    pub target_url: Option<String>,
    /// Requests in flight at once to the target (HubSpot's `throttling.maxConcurrentRequests`).
    pub max_concurrent: i64,
    /// The client secret, sealed with the server's key.
    pub secret_sealed: String,
    /// The last change-log entry turned into events.
    pub cursor_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

type AppRow = (i64, i64, String, Option<String>, i64, String, i64, i64, i64);
const APP_COLS: &str = "account_id, id, name, target_url, max_concurrent, secret_sealed, cursor_seq, created_at, updated_at";

fn app(r: AppRow) -> WebhookApp {
    WebhookApp {
        account_id: r.0,
        id: r.1,
        name: r.2,
        target_url: r.3,
        max_concurrent: r.4,
        secret_sealed: r.5,
        cursor_seq: r.6,
        created_at: r.7,
        updated_at: r.8,
    }
}

/// A subscription of an app to one event type (and, for property changes, one property).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSubscription {
    pub id: i64,
    pub app_id: i64,
    /// `contact.creation`, `deal.propertyChange`, `object.deletion`, …
    pub event_type: String,
    /// For `object.*` types: the custom object type (`2-123`).
    pub object_type_id: Option<String>,
    /// For `*.propertyChange`: the property.
    pub property_name: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

type SubRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);
const SUB_COLS: &str =
    "id, app_id, event_type, object_type_id, property_name, active, created_at, updated_at";

fn sub(r: SubRow) -> WebhookSubscription {
    WebhookSubscription {
        id: r.0,
        app_id: r.1,
        event_type: r.2,
        object_type_id: r.3,
        property_name: r.4,
        active: r.5 != 0,
        created_at: r.6,
        updated_at: r.7,
    }
}

/// What a new subscription is for.
#[derive(Debug, Clone)]
pub struct SubscriptionInput {
    pub event_type: String,
    pub object_type_id: Option<String>,
    pub property_name: Option<String>,
    pub active: bool,
}

/// Counts of an app's events by state, for its page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

impl Store {
    /// Makes an app; it hears of changes made from now on.
    pub async fn create_webhook_app(
        &self,
        account: i64,
        name: &str,
        target_url: Option<&str>,
        secret_sealed: &str,
    ) -> StoreResult<WebhookApp> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let id = allocate(&mut tx, account, "webhook_app", 1).await?;
        let (cursor,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(&format!(
            "INSERT INTO webhook_apps ({APP_COLS}) VALUES ($1, $2, $3, $4, 10, $5, $6, $7, $7)"
        ))
        .bind(account)
        .bind(id)
        .bind(name)
        .bind(target_url)
        .bind(secret_sealed)
        .bind(cursor)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.webhook_app(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("app {id}")))
    }

    pub async fn webhook_apps(&self, account: i64) -> StoreResult<Vec<WebhookApp>> {
        let rows: Vec<AppRow> = sqlx::query_as(&format!(
            "SELECT {APP_COLS} FROM webhook_apps WHERE account_id = $1 ORDER BY id"
        ))
        .bind(account)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(app).collect())
    }

    pub async fn webhook_app(&self, account: i64, id: i64) -> StoreResult<Option<WebhookApp>> {
        let row: Option<AppRow> = sqlx::query_as(&format!(
            "SELECT {APP_COLS} FROM webhook_apps WHERE account_id = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(app))
    }

    /// Sets (or, with `None`, clears) an app's target and its concurrency.
    pub async fn set_webhook_target(
        &self,
        account: i64,
        id: i64,
        target_url: Option<&str>,
        max_concurrent: i64,
    ) -> StoreResult<WebhookApp> {
        let _w = self.lock_writes().await;
        let n = sqlx::query("UPDATE webhook_apps SET target_url = $1, max_concurrent = $2, updated_at = $3 WHERE account_id = $4 AND id = $5")
            .bind(target_url)
            .bind(max_concurrent)
            .bind(now_ms())
            .bind(account)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        drop(_w);
        if n == 0 {
            return Err(StoreError::not_found(format!("app {id}")));
        }
        self.webhook_app(account, id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("app {id}")))
    }

    /// Deletes an app with its subscriptions and its events, sent or not.
    pub async fn delete_webhook_app(&self, account: i64, id: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let mut n = 0;
        for table in ["webhook_events", "webhook_subscriptions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE account_id = $1 AND app_id = $2"
            ))
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        n += sqlx::query("DELETE FROM webhook_apps WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn webhook_subscriptions(
        &self,
        account: i64,
        app_id: i64,
    ) -> StoreResult<Vec<WebhookSubscription>> {
        let rows: Vec<SubRow> = sqlx::query_as(&format!(
            "SELECT {SUB_COLS} FROM webhook_subscriptions WHERE account_id = $1 AND app_id = $2 ORDER BY id"
        ))
        .bind(account)
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(sub).collect())
    }

    pub async fn create_webhook_subscription(
        &self,
        account: i64,
        app_id: i64,
        input: &SubscriptionInput,
    ) -> StoreResult<WebhookSubscription> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM webhook_subscriptions WHERE account_id = $1 AND app_id = $2 AND event_type = $3 AND COALESCE(object_type_id, '') = $4 AND COALESCE(property_name, '') = $5")
                .bind(account)
                .bind(app_id)
                .bind(&input.event_type)
                .bind(input.object_type_id.clone().unwrap_or_default())
                .bind(input.property_name.clone().unwrap_or_default())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict {
                message: format!(
                    "the app already subscribes to {}{}",
                    input.event_type,
                    input
                        .property_name
                        .as_deref()
                        .map(|p| format!(" of {p}"))
                        .unwrap_or_default()
                ),
                existing_id: exists.map(|e| e.0),
            });
        }
        let id = allocate(&mut tx, account, "webhook_subscription", 1).await?;
        sqlx::query(&format!("INSERT INTO webhook_subscriptions (account_id, {SUB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"))
            .bind(account)
            .bind(id)
            .bind(app_id)
            .bind(&input.event_type)
            .bind(input.object_type_id.clone())
            .bind(input.property_name.clone())
            .bind(input.active as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(WebhookSubscription {
            id,
            app_id,
            event_type: input.event_type.clone(),
            object_type_id: input.object_type_id.clone(),
            property_name: input.property_name.clone(),
            active: input.active,
            created_at: now,
            updated_at: now,
        })
    }

    /// Turns subscriptions on or off; returns those found (the others are left out).
    pub async fn set_webhook_subscriptions_active(
        &self,
        account: i64,
        app_id: i64,
        changes: &[(i64, bool)],
    ) -> StoreResult<Vec<WebhookSubscription>> {
        let now = now_ms();
        let mut tx = self.write().await?;
        for (id, active) in changes {
            sqlx::query("UPDATE webhook_subscriptions SET active = $1, updated_at = $2 WHERE account_id = $3 AND app_id = $4 AND id = $5")
                .bind(*active as i64)
                .bind(now)
                .bind(account)
                .bind(app_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let all = self.webhook_subscriptions(account, app_id).await?;
        Ok(changes
            .iter()
            .filter_map(|(id, _)| all.iter().find(|s| s.id == *id).cloned())
            .collect())
    }

    pub async fn delete_webhook_subscription(
        &self,
        account: i64,
        app_id: i64,
        id: i64,
    ) -> StoreResult<bool> {
        let _w = self.lock_writes().await;
        Ok(sqlx::query(
            "DELETE FROM webhook_subscriptions WHERE account_id = $1 AND app_id = $2 AND id = $3",
        )
        .bind(account)
        .bind(app_id)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// The app's latest events, newest first: the delivery log.
    pub async fn webhook_events(
        &self,
        account: i64,
        app_id: i64,
        state: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<WebhookEvent>> {
        let rows: Vec<fanout::EventRow> = sqlx::query_as(&format!(
            "SELECT {} FROM webhook_events WHERE account_id = $1 AND app_id = $2 AND ($3 = '' OR state = $3) ORDER BY id DESC LIMIT $4",
            fanout::EVENT_COLS
        ))
        .bind(account)
        .bind(app_id)
        .bind(state.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(fanout::event).collect()
    }

    pub async fn webhook_delivery_counts(
        &self,
        account: i64,
        app_id: i64,
    ) -> StoreResult<DeliveryCounts> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM webhook_events WHERE account_id = $1 AND app_id = $2 GROUP BY state",
        )
        .bind(account)
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        let mut c = DeliveryCounts::default();
        for (state, n) in rows {
            match state.as_str() {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                _ => c.failed += n,
            }
        }
        Ok(c)
    }

    /// Sends the app's failed events again, from a first attempt.
    pub async fn retry_failed_webhook_events(&self, account: i64, app_id: i64) -> StoreResult<u64> {
        let _w = self.lock_writes().await;
        Ok(sqlx::query("UPDATE webhook_events SET state = 'pending', attempts = 0, next_at = $1, claim = NULL WHERE account_id = $2 AND app_id = $3 AND state = 'failed'")
            .bind(now_ms())
            .bind(account)
            .bind(app_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Drops events delivered or given up before `before` (the log keeps them until then),
    /// and events made before it and never sent (an app left without a target that long).
    pub async fn purge_webhook_events(&self, before: i64) -> StoreResult<u64> {
        let _w = self.lock_writes().await;
        let mut n = 0;
        for sql in [
            "DELETE FROM webhook_events WHERE state <> 'pending' AND done_at < $1",
            "DELETE FROM webhook_events WHERE state = 'pending' AND attempts = 0 AND created_at < $1",
        ] {
            n += sqlx::query(&format!("{sql} AND {}", crate::moving::SETTLED))
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// The sealed client secrets of every app, for `kontor admin key rotate`.
    pub(crate) async fn reseal_webhook_secrets(
        tx: &mut sqlx::AnyConnection,
        reseal: &impl Fn(&str) -> Option<String>,
    ) -> StoreResult<(usize, usize)> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT account_id, id, secret_sealed FROM webhook_apps ORDER BY account_id, id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let (mut done, mut unreadable) = (0, 0);
        for (account, id, sealed) in rows {
            match reseal(&sealed) {
                Some(new) => {
                    sqlx::query(
                        "UPDATE webhook_apps SET secret_sealed = $1 WHERE account_id = $2 AND id = $3",
                    )
                    .bind(new)
                    .bind(account)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    done += 1;
                }
                None => unreadable += 1,
            }
        }
        Ok((done, unreadable))
    }
}
