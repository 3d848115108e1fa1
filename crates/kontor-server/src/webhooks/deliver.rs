//! The sender: every node with workers runs it. Each tick it fans the change log out into
//! events (`Store::fan_out_webhooks`), then, per app with events due, claims batches of up to
//! 100 (HubSpot's batch size) and POSTs each as one JSON array, signed as HubSpot signs
//! (`X-HubSpot-Signature-v3`), with at most the app's `maxConcurrentRequests` in flight.
//!
//! At least once: an event is marked delivered only after its target answered 2xx. A node
//! that dies mid-request leaves its claim, which lapses (`Policy::claim`), and the events are
//! sent again, by any node, with the same `eventId`: receivers de-duplicate by it. A failed
//! attempt (no answer, a timeout, a 5xx or a 429) is retried after a back-off that doubles each
//! time (from `Policy::retry_base`, up to 6 hours, with some jitter), up to
//! `MAX_DELIVERY_ATTEMPTS` attempts in all; another 4xx is not retried (the receiver refused
//! the request itself). Given-up events stay in the log, from where they can be sent again.

use super::target::{Policy, Resolver};
use base64::Engine;
use kontor_domain::time::now_ms;
use kontor_jobs::keys::Keyring;
use kontor_store::{Directory, Store, WebhookApp, WebhookEvent, MAX_DELIVERY_ATTEMPTS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Events in one request.
const BATCH: i64 = 100;
/// The pause before the next round: idle, after a round that found work, and after one that
/// found every request slot of an app in use.
const IDLE: Duration = Duration::from_millis(200);
const BUSY: Duration = Duration::from_millis(5);
const FULL: Duration = Duration::from_millis(25);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// `X-HubSpot-Signature-v3`: base64 of HMAC-SHA256, keyed with the app's client secret, of
/// the method, the target URL, the body and the timestamp (milliseconds), concatenated.
pub fn signature_v3(secret: &str, method: &str, url: &str, body: &str, timestamp: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    for part in [method, url, body, timestamp] {
        ctx.update(part.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref())
}

/// The wait before attempt `attempt + 1`, after `attempt` failed ones.
fn backoff(base: Duration, attempt: i64) -> Duration {
    use rand::Rng;
    let exp = base.saturating_mul(1u32 << (attempt - 1).clamp(0, 20));
    let capped = exp.min(MAX_BACKOFF);
    capped.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

struct Sender {
    dir: Arc<Directory>,
    keys: Arc<Keyring>,
    policy: Policy,
    client: reqwest::Client,
    /// Requests in flight per (store, account, app).
    inflight: std::sync::Mutex<HashMap<(usize, i64, i64), (usize, Arc<Semaphore>)>>,
    node: String,
}

/// Runs the sender until `stop` fires.
pub async fn run(
    dir: Arc<Directory>,
    keys: Arc<Keyring>,
    policy: Policy,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.timeout)
        .user_agent("kontor-webhooks")
        .dns_resolver(Arc::new(Resolver {
            allow_private: policy.allow_private_targets,
        }))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; nothing will be sent");
            return;
        }
    };
    let sender = Arc::new(Sender {
        dir,
        keys,
        policy,
        client,
        inflight: Default::default(),
        node: uuid::Uuid::new_v4().simple().to_string(),
    });
    loop {
        let pause = match sender.clone().tick().await {
            Ok(pause) => pause,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks");
                IDLE
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

impl Sender {
    /// Each distinct database once (regions may share one).
    fn stores(&self) -> Vec<Store> {
        let mut regions: Vec<_> = self.dir.regions.iter().collect();
        regions.sort_by_key(|(r, _)| r.as_str());
        let mut out: Vec<Store> = Vec::new();
        for (_, s) in regions {
            if !out.iter().any(|o| o.same_database(s)) {
                out.push(s.clone());
            }
        }
        out
    }

    /// One round: fans out, then claims and sends what is due. Returns how long to pause.
    async fn tick(self: Arc<Self>) -> anyhow::Result<Duration> {
        let mut pause = IDLE;
        for (i, store) in self.stores().into_iter().enumerate() {
            for (account, app) in store.webhook_apps_behind().await? {
                // A batch per app per round keeps one busy account from holding up the others.
                match store.fan_out_webhooks(account, app).await {
                    Ok(_) => pause = BUSY,
                    Err(e) => tracing::warn!(account, app, error = %e, "webhooks: fan-out"),
                }
            }
            let now = now_ms();
            for (account, app_id) in store.webhook_apps_due(now).await? {
                let Some(app) = store.webhook_app(account, app_id).await? else {
                    continue;
                };
                let Some(url) = app.target_url.clone() else {
                    continue;
                };
                let sem = {
                    let want = app.max_concurrent.max(1) as usize;
                    let mut m = self.inflight.lock().expect("not poisoned");
                    let entry = m
                        .entry((i, account, app_id))
                        .or_insert_with(|| (want, Arc::new(Semaphore::new(want))));
                    // A changed limit: a new count (requests under the old one run on).
                    if entry.0 != want {
                        *entry = (want, Arc::new(Semaphore::new(want)));
                    }
                    entry.1.clone()
                };
                loop {
                    let Ok(permit) = sem.clone().try_acquire_owned() else {
                        pause = pause.min(FULL);
                        break;
                    };
                    let claim = format!("{}-{}", self.node, uuid::Uuid::new_v4().simple());
                    let events = store
                        .claim_webhook_events(
                            account,
                            app_id,
                            &claim,
                            now_ms(),
                            self.policy.claim.as_millis() as i64,
                            BATCH,
                        )
                        .await?;
                    if events.is_empty() {
                        break;
                    }
                    pause = BUSY;
                    let (me, store, app, url) =
                        (self.clone(), store.clone(), app.clone(), url.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        if let Err(e) = me.send(&store, &app, &url, &claim, events).await {
                            tracing::warn!(account = app.account_id, app = app.id, error = %e, "webhooks: recording an attempt");
                        }
                    });
                }
            }
        }
        Ok(pause)
    }

    async fn send(
        &self,
        store: &Store,
        app: &WebhookApp,
        url: &str,
        claim: &str,
        events: Vec<WebhookEvent>,
    ) -> anyhow::Result<()> {
        let body: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                let mut p = e.payload.clone();
                p["attemptNumber"] = serde_json::json!(e.attempts);
                p
            })
            .collect();
        let body = serde_json::to_string(&body)?;
        let (status, error) = match crate::seal::open(&self.keys, &app.secret_sealed)
            .and_then(|s| String::from_utf8(s).ok())
        {
            None => (
                None,
                Some("the app's client secret cannot be opened with the server's key".to_string()),
            ),
            Some(secret) => {
                let ts = now_ms().to_string();
                let sig = signature_v3(&secret, "POST", url, &body, &ts);
                let sent = self
                    .client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-HubSpot-Signature-v3", sig)
                    .header("X-HubSpot-Request-Timestamp", &ts)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) => (Some(r.status().as_u16() as i64), None),
                    Err(e) => (None, Some(describe(&e))),
                }
            }
        };
        let delivered = matches!(status, Some(200..=299));
        // Retried: no answer, a timeout, 5xx, 429. Another status is the receiver's refusal.
        let retry = matches!(status, None | Some(429) | Some(500..=599));
        let now = now_ms();
        let error = error.or_else(|| {
            status
                .filter(|_| !delivered)
                .map(|s| format!("the target answered {s}"))
        });
        let attempt = kontor_store::WebhookAttempt {
            delivered,
            status,
            error,
            at: now,
        };
        let base = self.policy.retry_base;
        store
            .record_webhook_attempt(app.account_id, claim, &events, &attempt, |attempts| {
                (retry && attempts < MAX_DELIVERY_ATTEMPTS)
                    .then(|| now + backoff(base, attempts).as_millis() as i64)
            })
            .await?;
        Ok(())
    }
}

/// A failed request in a few words, with its cause (a refused address, a timeout).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut msg = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_its_cap() {
        let base = Duration::from_secs(60);
        let first = backoff(base, 1);
        assert!(first >= Duration::from_secs(48) && first <= Duration::from_secs(72));
        let fourth = backoff(base, 4);
        assert!(fourth >= Duration::from_secs(384) && fourth <= Duration::from_secs(576));
        assert!(backoff(base, 30) <= MAX_BACKOFF.mul_f64(1.2));
    }

    #[test]
    fn the_signature_covers_method_url_body_and_time() {
        let a = signature_v3("s", "POST", "https://x/y", "[]", "1");
        assert_eq!(a, signature_v3("s", "POST", "https://x/y", "[]", "1"));
        assert_ne!(a, signature_v3("s", "POST", "https://x/y", "[]", "2"));
        assert_ne!(a, signature_v3("t", "POST", "https://x/y", "[]", "1"));
    }
}
