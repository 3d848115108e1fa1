//! From the change log to events (the fan-out), and the events' delivery bookkeeping.

use super::WebhookSubscription;
use crate::records::values_clause;
use crate::{allocate, Store, StoreResult};
use kontor_domain::BuiltinObject;
use serde_json::{json, Map, Value};

/// Attempts at delivering an event before it is given up (HubSpot: 10, over about a day).
pub const MAX_DELIVERY_ATTEMPTS: i64 = 10;

/// The object types with event types of their own (`contact.creation`); events of the others
/// are `object.*`, with the object type in `objectTypeId`.
const NAMED: &[&str] = &[
    "contact",
    "company",
    "deal",
    "ticket",
    "product",
    "line_item",
];

/// Every event type an app can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "contact.creation",
    "contact.deletion",
    "contact.privacyDeletion",
    "contact.propertyChange",
    "contact.merge",
    "contact.restore",
    "contact.associationChange",
    "company.creation",
    "company.deletion",
    "company.propertyChange",
    "company.merge",
    "company.restore",
    "company.associationChange",
    "deal.creation",
    "deal.deletion",
    "deal.propertyChange",
    "deal.merge",
    "deal.restore",
    "deal.associationChange",
    "ticket.creation",
    "ticket.deletion",
    "ticket.propertyChange",
    "ticket.merge",
    "ticket.restore",
    "ticket.associationChange",
    "product.creation",
    "product.deletion",
    "product.propertyChange",
    "product.merge",
    "product.restore",
    "line_item.creation",
    "line_item.deletion",
    "line_item.propertyChange",
    "line_item.merge",
    "line_item.restore",
    "line_item.associationChange",
    "object.creation",
    "object.deletion",
    "object.propertyChange",
    "object.merge",
    "object.restore",
    "object.associationChange",
];

/// The event types of one object type's prefix (`contact`), for the console's choices.
pub fn event_types_of(prefix: &str) -> impl Iterator<Item = &'static str> + '_ {
    EVENT_TYPES
        .iter()
        .copied()
        .filter(move |t| t.split('.').next() == Some(prefix))
}

/// An event, waiting for delivery or done with.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub account_id: i64,
    pub id: i64,
    pub app_id: i64,
    pub subscription_id: i64,
    /// The change-log entry it comes from.
    pub seq: i64,
    pub object_id: i64,
    pub event_type: String,
    /// HubSpot's event body, but for `attemptNumber` (added when sent).
    pub payload: Value,
    /// `pending`, `delivered`, or `failed` (given up after [`MAX_DELIVERY_ATTEMPTS`]).
    pub state: String,
    pub attempts: i64,
    pub next_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

pub(super) type EventRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);
pub(super) const EVENT_COLS: &str = "account_id, id, app_id, subscription_id, seq, object_id, event_type, payload, state, attempts, next_at, last_status, last_error, created_at, done_at";

pub(super) fn event(r: EventRow) -> StoreResult<WebhookEvent> {
    Ok(WebhookEvent {
        account_id: r.0,
        id: r.1,
        app_id: r.2,
        subscription_id: r.3,
        seq: r.4,
        object_id: r.5,
        event_type: r.6,
        payload: serde_json::from_str(&r.7)?,
        state: r.8,
        attempts: r.9,
        next_at: r.10,
        last_status: r.11,
        last_error: r.12,
        created_at: r.13,
        done_at: r.14,
    })
}

/// How an attempt at sending went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The target answered 2xx.
    pub delivered: bool,
    /// The target's answer, if any.
    pub status: Option<i64>,
    /// What went wrong, in a few words.
    pub error: Option<String>,
    pub at: i64,
}

/// One change-log entry as the fan-out reads it.
pub(crate) struct LogEntry {
    pub seq: i64,
    pub type_id: String,
    pub record_id: i64,
    pub kind: String,
    pub props: Value,
    pub source: String,
    pub at: i64,
}

/// The prefix of an object type's events: `contact`, …, or `object`.
fn prefix(type_id: &str) -> &'static str {
    BuiltinObject::by_type_id(type_id)
        .map(|b| b.singular)
        .and_then(|s| NAMED.iter().copied().find(|n| *n == s))
        .unwrap_or("object")
}

/// `CONTACT`, or the type id of a custom object, for `associationType`.
fn assoc_name(type_id: &str) -> String {
    BuiltinObject::by_type_id(type_id)
        .map(|b| b.singular.to_uppercase())
        .unwrap_or_else(|| type_id.to_uppercase())
}

fn id_of(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        v => v.as_i64().unwrap_or(0),
    }
}

/// The events one change-log entry makes for one subscription: the body of each (without the
/// ids and the attempt number) and the object it is about.
pub(crate) fn events_for(e: &LogEntry, s: &WebhookSubscription) -> Vec<(i64, Map<String, Value>)> {
    let Some((want_prefix, suffix)) = s.event_type.split_once('.') else {
        return Vec::new();
    };
    let fits = |type_id: &str| {
        let p = prefix(type_id);
        p == want_prefix && (p != "object" || s.object_type_id.as_deref() == Some(type_id))
    };
    let base = |object_id: i64, type_id: &str| {
        let mut m = Map::new();
        m.insert("occurredAt".into(), json!(e.at));
        m.insert("subscriptionType".into(), json!(s.event_type));
        m.insert("objectId".into(), json!(object_id));
        if want_prefix == "object" {
            m.insert("objectTypeId".into(), json!(type_id));
        }
        m.insert("changeSource".into(), json!(e.source));
        m
    };
    let mut out = Vec::new();
    let own = fits(&e.type_id);
    match (suffix, e.kind.as_str()) {
        ("creation", "set") if own && e.props.get("hs_object_id").is_some() => {
            let mut m = base(e.record_id, &e.type_id);
            m.insert("changeFlag".into(), json!("NEW"));
            out.push((e.record_id, m));
        }
        ("propertyChange", "set") if own => {
            if let Some(name) = &s.property_name {
                if let Some(v) = e.props.get(name) {
                    let mut m = base(e.record_id, &e.type_id);
                    m.insert("propertyName".into(), json!(name));
                    m.insert("propertyValue".into(), json!(v.as_str().unwrap_or("")));
                    out.push((e.record_id, m));
                }
            }
        }
        ("deletion", "archive" | "erase") | ("privacyDeletion", "erase") if own => {
            let mut m = base(e.record_id, &e.type_id);
            m.insert("changeFlag".into(), json!("DELETED"));
            out.push((e.record_id, m));
        }
        ("restore", "restore") if own => {
            let mut m = base(e.record_id, &e.type_id);
            m.insert("changeFlag".into(), json!("RESTORED"));
            out.push((e.record_id, m));
        }
        ("merge", "merge") if own => {
            let primary = id_of(&e.props["mergedInto"]);
            let mut m = base(primary, &e.type_id);
            m.insert("primaryObjectId".into(), json!(primary));
            m.insert("mergedObjectIds".into(), json!([e.record_id]));
            m.insert("newObjectId".into(), json!(primary));
            m.insert(
                "numberOfPropertiesMoved".into(),
                json!(e.props["propertiesMoved"].as_i64().unwrap_or(0)),
            );
            out.push((primary, m));
        }
        ("associationChange", "associate" | "dissociate") => {
            let to_type = e.props["toObjectType"].as_str().unwrap_or("");
            let to_id = id_of(&e.props["toObjectId"]);
            let removed = e.kind == "dissociate";
            let types = e.props["types"].as_array().cloned().unwrap_or_default();
            // Told from each side the subscription is about: the change's own record, and
            // the other one (with the inverse type).
            let sides = [
                (
                    own,
                    &e.type_id as &str,
                    e.record_id,
                    to_type,
                    to_id,
                    "typeId",
                ),
                (
                    fits(to_type),
                    to_type,
                    to_id,
                    &e.type_id as &str,
                    e.record_id,
                    "inverseTypeId",
                ),
            ];
            for (ok, from_t, from_id, other_t, other_id, key) in sides {
                if !ok {
                    continue;
                }
                for t in &types {
                    let mut m = base(from_id, from_t);
                    m.insert(
                        "associationType".into(),
                        json!(format!("{}_TO_{}", assoc_name(from_t), assoc_name(other_t))),
                    );
                    m.insert("associationTypeId".into(), t[key].clone());
                    m.insert("associationCategory".into(), t["category"].clone());
                    m.insert("fromObjectId".into(), json!(from_id));
                    m.insert("toObjectId".into(), json!(other_id));
                    m.insert("associationRemoved".into(), json!(removed));
                    m.insert(
                        "isPrimaryAssociation".into(),
                        json!(t["label"].as_str() == Some("Primary")),
                    );
                    out.push((from_id, m));
                }
            }
        }
        _ => {}
    }
    out
}

/// How many change-log entries one fan-out transaction reads.
const FAN_OUT_BATCH: i64 = 2000;

impl Store {
    /// Apps whose cursor is behind their account's change log, in accounts settled here.
    pub async fn webhook_apps_behind(&self) -> StoreResult<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(&format!(
            "SELECT account_id, id FROM webhook_apps a WHERE EXISTS (SELECT 1 FROM changes c WHERE c.account_id = a.account_id AND c.seq > a.cursor_seq) AND {}",
            crate::moving::SETTLED
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Turns the change-log entries past an app's cursor (at most a batch) into its events,
    /// and moves the cursor, in one transaction. Returns the events made; `None` when another
    /// node moved the cursor meanwhile (nothing is written then).
    pub async fn fan_out_webhooks(&self, account: i64, app_id: i64) -> StoreResult<Option<usize>> {
        let now = kontor_domain::time::now_ms();
        let mut tx = self.write().await?;
        let Some((cursor,)): Option<(i64,)> =
            sqlx::query_as("SELECT cursor_seq FROM webhook_apps WHERE account_id = $1 AND id = $2")
                .bind(account)
                .bind(app_id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(Some(0));
        };
        let subs: Vec<WebhookSubscription> = self
            .webhook_subscriptions(account, app_id)
            .await?
            .into_iter()
            .filter(|s| s.active)
            .collect();
        let (last, made) = if subs.is_empty() {
            // Nothing listens: the cursor simply follows the log.
            let (last,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $1")
                    .bind(account)
                    .fetch_one(&mut *tx)
                    .await?;
            (last.max(cursor), Vec::new())
        } else {
            let rows: Vec<(i64, String, i64, String, String, String, i64)> = sqlx::query_as(
                "SELECT seq, object_type, record_id, kind, props, source, at FROM changes WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(account)
            .bind(cursor)
            .bind(FAN_OUT_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut made = Vec::new();
            let mut last = cursor;
            for (seq, type_id, record_id, kind, props, source, at) in rows {
                last = seq;
                let e = LogEntry {
                    seq,
                    type_id,
                    record_id,
                    kind,
                    props: serde_json::from_str(&props)?,
                    source,
                    at,
                };
                for s in &subs {
                    for (object_id, body) in events_for(&e, s) {
                        made.push((s, e.seq, object_id, body));
                    }
                }
            }
            (last, made)
        };
        if !made.is_empty() {
            let first = allocate(&mut tx, account, "webhook_event", made.len() as i64).await?;
            for (c, chunk) in made.chunks(100).enumerate() {
                let sql = format!(
                    "INSERT INTO webhook_events (account_id, id, app_id, subscription_id, seq, object_id, event_type, payload, state, attempts, next_at, created_at) VALUES {}",
                    values_clause(chunk.len(), 12)
                );
                let mut q = sqlx::query(&sql);
                for (i, (s, seq, object_id, body)) in chunk.iter().enumerate() {
                    let id = first + (c * 100 + i) as i64;
                    let mut body = body.clone();
                    body.insert("eventId".into(), json!(id));
                    body.insert("subscriptionId".into(), json!(s.id));
                    body.insert("portalId".into(), json!(account));
                    body.insert("appId".into(), json!(app_id));
                    q = q
                        .bind(account)
                        .bind(id)
                        .bind(app_id)
                        .bind(s.id)
                        .bind(*seq)
                        .bind(*object_id)
                        .bind(&s.event_type)
                        .bind(Value::Object(body).to_string())
                        .bind("pending")
                        .bind(0i64)
                        .bind(now)
                        .bind(now);
                }
                q.execute(&mut *tx).await?;
            }
        }
        let moved = sqlx::query(
            "UPDATE webhook_apps SET cursor_seq = $1 WHERE account_id = $2 AND id = $3 AND cursor_seq = $4",
        )
        .bind(last)
        .bind(account)
        .bind(app_id)
        .bind(cursor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(made.len()))
    }

    /// Apps with a target and events due, in accounts settled here (one probe of the pending
    /// events' index per app, however long the backlog).
    pub async fn webhook_apps_due(&self, now: i64) -> StoreResult<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(&format!(
            "SELECT account_id, id FROM webhook_apps a WHERE target_url IS NOT NULL AND {} AND EXISTS (SELECT 1 FROM webhook_events e WHERE e.account_id = a.account_id AND e.app_id = a.id AND e.state = 'pending' AND e.next_at <= $1)",
            crate::moving::SETTLED
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims up to `limit` due events of an app, the longest due first, for `lease_ms`:
    /// another node (or this one, after a crash) sends them again only once the claim lapses.
    /// The ids are read from the pending events' index, then updated by primary key on the
    /// condition that they are still due, so two nodes never both claim one (and no planner
    /// can turn the claim into a scan of the app's events).
    pub async fn claim_webhook_events(
        &self,
        account: i64,
        app_id: i64,
        claim: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<WebhookEvent>> {
        let _w = self.lock_writes().await;
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM webhook_events WHERE account_id = $1 AND app_id = $2 AND state = 'pending' AND next_at <= $3 ORDER BY next_at, id LIMIT $4",
        )
        .bind(account)
        .bind(app_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE webhook_events SET next_at = $1, claim = $2 WHERE account_id = $3 AND state = 'pending' AND next_at <= $4 AND id IN ({}) RETURNING {EVENT_COLS}",
            crate::records::in_list(5, ids.len())
        );
        let mut q = sqlx::query_as::<_, EventRow>(&sql)
            .bind(now + lease_ms)
            .bind(claim)
            .bind(account)
            .bind(now);
        for (id,) in &ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut events: Vec<WebhookEvent> =
            rows.into_iter().map(event).collect::<StoreResult<_>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    /// Records one attempt at sending claimed events: delivered, or not. Events not
    /// delivered are due again at `next_at(attempts so far)`, or given up when it gives
    /// `None`. One statement per count of earlier attempts among them (a batch mostly has
    /// one), by primary key; only the holder of the claim changes anything.
    pub async fn record_webhook_attempt(
        &self,
        account: i64,
        claim: &str,
        events: &[WebhookEvent],
        attempt: &Attempt,
        next_at: impl Fn(i64) -> Option<i64>,
    ) -> StoreResult<()> {
        let Attempt {
            delivered,
            status,
            ref error,
            at: now,
        } = *attempt;
        let mut groups: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for e in events {
            groups.entry(e.attempts).or_default().push(e.id);
        }
        let _w = self.lock_writes().await;
        for (before, ids) in groups {
            let (state, next, done) = match (delivered, next_at(before + 1)) {
                (true, _) => ("delivered", now, Some(now)),
                (false, Some(at)) => ("pending", at, None),
                (false, None) => ("failed", now, Some(now)),
            };
            let sql = format!(
                "UPDATE webhook_events SET state = $1, next_at = $2, done_at = $3, attempts = attempts + 1, last_status = $4, last_error = $5, claim = NULL WHERE account_id = $6 AND claim = $7 AND id IN ({})",
                crate::records::in_list(8, ids.len())
            );
            let mut q = sqlx::query(&sql)
                .bind(state)
                .bind(next)
                .bind(done)
                .bind(status)
                .bind(error.clone())
                .bind(account)
                .bind(claim);
            for id in ids {
                q = q.bind(id);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(
        event_type: &str,
        property: Option<&str>,
        object_type: Option<&str>,
    ) -> WebhookSubscription {
        WebhookSubscription {
            id: 7,
            app_id: 1,
            event_type: event_type.into(),
            object_type_id: object_type.map(Into::into),
            property_name: property.map(Into::into),
            active: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn entry(type_id: &str, id: i64, kind: &str, props: Value) -> LogEntry {
        LogEntry {
            seq: 1,
            type_id: type_id.into(),
            record_id: id,
            kind: kind.into(),
            props,
            source: "API".into(),
            at: 5,
        }
    }

    #[test]
    fn a_creation_tells_creation_and_the_values_set() {
        let e = entry(
            "0-1",
            11,
            "set",
            json!({"hs_object_id": "11", "email": "a@x.io"}),
        );
        let created = events_for(&e, &sub("contact.creation", None, None));
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].1["changeFlag"], "NEW");
        let email = events_for(&e, &sub("contact.propertyChange", Some("email"), None));
        assert_eq!(email[0].1["propertyValue"], "a@x.io");
        assert!(events_for(&e, &sub("contact.propertyChange", Some("phone"), None)).is_empty());
        assert!(events_for(&e, &sub("company.creation", None, None)).is_empty());
        // An update is no creation; a cleared value is told as empty.
        let u = entry("0-1", 11, "set", json!({"email": null}));
        assert!(events_for(&u, &sub("contact.creation", None, None)).is_empty());
        let cleared = events_for(&u, &sub("contact.propertyChange", Some("email"), None));
        assert_eq!(cleared[0].1["propertyValue"], "");
    }

    #[test]
    fn custom_objects_are_told_as_objects_of_their_type() {
        let e = entry("2-9", 3, "archive", json!({}));
        let s = sub("object.deletion", None, Some("2-9"));
        let got = events_for(&e, &s);
        assert_eq!(got[0].1["objectTypeId"], "2-9");
        assert!(events_for(&e, &sub("object.deletion", None, Some("2-10"))).is_empty());
    }

    #[test]
    fn associations_are_told_from_both_sides() {
        let e = entry(
            "0-1",
            11,
            "dissociate",
            json!({"toObjectType": "0-2", "toObjectId": "22", "types": [{"category": "HUBSPOT_DEFINED", "typeId": 279, "inverseTypeId": 280, "label": null}]}),
        );
        let c = events_for(&e, &sub("contact.associationChange", None, None));
        assert_eq!(c[0].1["associationType"], "CONTACT_TO_COMPANY");
        assert_eq!(c[0].1["associationRemoved"], true);
        assert_eq!(c[0].1["toObjectId"], 22);
        let co = events_for(&e, &sub("company.associationChange", None, None));
        assert_eq!(co[0].1["associationType"], "COMPANY_TO_CONTACT");
        assert_eq!(co[0].1["fromObjectId"], 22);
        assert_eq!(co[0].1["associationTypeId"], 280);
    }

    #[test]
    fn a_merge_names_the_primary_and_an_erasure_is_a_deletion_too() {
        let m = entry(
            "0-1",
            5,
            "merge",
            json!({"mergedInto": "4", "propertiesMoved": 2}),
        );
        let got = events_for(&m, &sub("contact.merge", None, None));
        assert_eq!(got[0].0, 4);
        assert_eq!(got[0].1["mergedObjectIds"], json!([5]));
        assert_eq!(got[0].1["numberOfPropertiesMoved"], 2);
        let gone = entry("0-1", 5, "erase", json!({}));
        assert_eq!(
            events_for(&gone, &sub("contact.privacyDeletion", None, None)).len(),
            1
        );
        assert_eq!(
            events_for(&gone, &sub("contact.deletion", None, None)).len(),
            1
        );
    }
}
