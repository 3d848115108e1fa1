//! The sync engine. Every node with workers runs it: it claims a connection whose round is
//! due (a lease renewed after every page, so a node that dies hands the round on when the
//! lease lapses), and runs a round:
//!
//! 1. describe the objects (field types, picklists, the external-id field), at most daily and
//!    when an admin retries sync errors;
//! 2. per object, in [`OBJECTS`] order: first the deleted feed since its window's start
//!    (deletes, and merges into the record linked to the master), with a full re-read when
//!    its `earliestDateAvailable` has passed the start; then the records changed since the
//!    cursor, by (`SystemModstamp`, `Id`), up to the feed's `latestDateCovered` (a minute of
//!    Salesforce's clock that has passed, so no record can still get a stamp the cursor has
//!    passed), following `nextRecordsUrl`, each page applied with its cursor in one
//!    transaction. The owners records name are mapped as they come: a Salesforce user to the
//!    owner with its e-mail, or, with no kontor user, to a new Salesforce-only owner;
//! 3. kontor's changes since the push cursor, sent by collections of 200 (updates by id,
//!    creates as upserts by the external-id field holding kontor's id, so a repeated send
//!    cannot create twice), answers and cursor recorded in one transaction.
//!
//! A refused or failed round backs off: Salesforce's limit or the integration's budget until
//! the window allows, a 5xx doubling from 30 seconds up to an hour; tokens that no longer work
//! pause the integration with the reason shown.

use super::client::{Api, QueryPage, SfError};
use super::{from_salesforce, id_property, to_salesforce, Policy, OBJECTS};
use crate::seal;
use kontor_domain::time::{iso, now_ms, parse_instant};
use kontor_jobs::keys::Keyring;
use kontor_store::{
    Directory, PullCursor, PulledRecord, PushOutcome, SalesforceConnection, SalesforceErrorReport,
    SalesforceField, SalesforceMapping, SalesforceSettings, Store, RULE_NONE, RULE_PREFER_SF,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

mod push;
mod uninstall;

const IDLE: Duration = Duration::from_millis(500);
/// Change-log entries read per push batch.
const PUSH_BATCH: i64 = 2000;
/// Records per collection request (Salesforce's maximum).
const COLLECTION: usize = 200;
const DAY_MS: i64 = 86_400_000;
/// Salesforce's standard opportunity stages and the default deal pipeline's stages they
/// correspond to.
const STANDARD_STAGES: &[(&str, &str)] = &[
    ("Prospecting", "appointmentscheduled"),
    ("Qualification", "qualifiedtobuy"),
    ("Needs Analysis", "qualifiedtobuy"),
    ("Value Proposition", "presentationscheduled"),
    ("Id. Decision Makers", "decisionmakerboughtin"),
    ("Perception Analysis", "decisionmakerboughtin"),
    ("Proposal/Price Quote", "contractsent"),
    ("Negotiation/Review", "contractsent"),
    ("Closed Won", "closedwon"),
    ("Closed Lost", "closedlost"),
];
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Runs the engine until `stop` fires; does nothing when no connected app is configured.
pub async fn run(
    dir: Arc<Directory>,
    keys: Arc<Keyring>,
    policy: Arc<Policy>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if !policy.enabled() {
        return;
    }
    let node = uuid::Uuid::new_v4().simple().to_string();
    loop {
        let mut stores: Vec<Store> = Vec::new();
        for s in dir.regions.values() {
            if !stores.iter().any(|o| o.same_database(s)) {
                stores.push(s.clone());
            }
        }
        for store in stores {
            uninstall::run_queued(&store, &keys, &policy, &node).await;
            match store.salesforce_due().await {
                Ok(due) => {
                    for account in due {
                        if *stop.borrow() {
                            return;
                        }
                        if let Err(e) = round(&store, &keys, &policy, account, &node).await {
                            tracing::warn!(account, error = %e, "salesforce round");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "salesforce"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// What stopped a round early.
#[derive(Debug)]
enum Stop {
    Sf(SfError),
    Store(kontor_store::StoreError),
    /// The claim was lost: paused, or taken over after a lapse.
    Released,
}

impl From<SfError> for Stop {
    fn from(e: SfError) -> Self {
        Stop::Sf(e)
    }
}
impl From<kontor_store::StoreError> for Stop {
    fn from(e: kontor_store::StoreError) -> Self {
        Stop::Store(e)
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Sf(e) => write!(f, "{e}"),
            Stop::Store(e) => write!(f, "{e}"),
            Stop::Released => write!(f, "the round was paused"),
        }
    }
}

/// One round of one connection, if it can be claimed.
pub async fn round(
    store: &Store,
    keys: &Keyring,
    policy: &Policy,
    account: i64,
    node: &str,
) -> Result<(), kontor_store::StoreError> {
    let lease_ms = policy.claim.as_millis() as i64;
    let Some(conn) = store
        .claim_salesforce(account, node, lease_ms, false)
        .await?
    else {
        return Ok(());
    };
    let open = |s: &str| {
        seal::open(keys, s)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    };
    let now = now_ms();
    let started_at = now;
    let org_limit = conn.org_limit.unwrap_or(15_000);
    let budget = org_limit * conn.settings.budget_percent.clamp(1, 100) / 100;
    let used = if conn.calls_window_start + DAY_MS <= now {
        0
    } else {
        conn.calls
    };
    let api = Api::new(
        policy,
        &conn.instance_url,
        open(&conn.access_sealed),
        open(&conn.refresh_sealed),
        (budget - used).max(0),
    );
    let mut api = match api {
        Ok(a) => a,
        Err(e) => {
            store
                .finish_salesforce_round(
                    account,
                    node,
                    started_at,
                    Some(&e.to_string()),
                    now + 60_000,
                    0,
                    0,
                    None,
                )
                .await?;
            return Ok(());
        }
    };
    let mut engine = Engine {
        store,
        node,
        account,
        conn: conn.clone(),
        owners: BTreeMap::new(),
        lease_ms,
    };
    let result = engine.sync(&mut api).await;
    if let Some((access, refresh)) = &api.refreshed {
        store
            .set_salesforce_tokens(
                account,
                &seal::seal(keys, access.as_bytes()),
                refresh
                    .as_ref()
                    .map(|r| seal::seal(keys, r.as_bytes()))
                    .as_deref(),
            )
            .await?;
    }
    let now = now_ms();
    let interval = policy.interval.as_millis() as i64;
    let (error, next_at, backoff) = match &result {
        Ok(()) => (None, now + interval, 0),
        Err(Stop::Sf(SfError::Budget)) => {
            let window_end = if conn.calls_window_start + DAY_MS <= now {
                now + DAY_MS
            } else {
                conn.calls_window_start + DAY_MS
            };
            (
                Some(result.as_ref().unwrap_err().to_string()),
                window_end,
                0,
            )
        }
        Err(Stop::Sf(SfError::Limit | SfError::Unavailable(_))) => {
            let b = if conn.backoff_ms == 0 {
                30_000
            } else {
                (conn.backoff_ms * 2).min(MAX_BACKOFF_MS)
            };
            (Some(result.as_ref().unwrap_err().to_string()), now + b, b)
        }
        Err(Stop::Sf(SfError::Auth(m))) => {
            store
                .finish_salesforce_round(
                    account,
                    node,
                    started_at,
                    Some(m),
                    now + interval,
                    0,
                    api.calls,
                    api.org,
                )
                .await?;
            store
                .set_salesforce_paused(
                    account,
                    Some("Salesforce refused the connection's tokens. Connect again to resume."),
                )
                .await?;
            return Ok(());
        }
        Err(Stop::Released) => (None, now + interval, 0),
        Err(e) => (Some(e.to_string()), now + interval, 0),
    };
    store
        .finish_salesforce_round(
            account,
            node,
            started_at,
            error.as_deref(),
            next_at,
            backoff,
            api.calls,
            api.org,
        )
        .await
}

struct Engine<'a> {
    store: &'a Store,
    node: &'a str,
    account: i64,
    conn: SalesforceConnection,
    /// Salesforce user id → owner id.
    owners: BTreeMap<String, i64>,
    lease_ms: i64,
}

/// A SOQL datetime literal (and the feeds' parameter) from an instant.
fn soql_time(ms: i64) -> String {
    format!("{}Z", &iso(ms)[..19])
}

fn sf_instant(s: &str) -> Option<i64> {
    parse_instant(&super::salesforce_datetime(s).unwrap_or_else(|| s.to_string()))
}

impl Engine<'_> {
    async fn renew(&self) -> Result<(), Stop> {
        match self
            .store
            .claim_salesforce(self.account, self.node, self.lease_ms, true)
            .await?
        {
            Some(_) => Ok(()),
            None => Err(Stop::Released),
        }
    }

    fn org(&self) -> &str {
        &self.conn.org_id
    }

    async fn sync(&mut self, api: &mut Api<'_>) -> Result<(), Stop> {
        let stale = self
            .conn
            .settings
            .described_at
            .is_none_or(|t| t + DAY_MS < now_ms());
        if stale {
            self.describe(api).await?;
        }
        self.owners = self.store.salesforce_owner_map(self.account).await?;
        let mappings = self.store.salesforce_mappings(self.account).await?;
        for (sf_type, kontor) in OBJECTS {
            let until = self.pull_deleted(api, sf_type).await?;
            self.pull(api, sf_type, kontor, &mappings, until).await?;
            self.renew().await?;
        }
        self.push(api, &mappings).await
    }

    /// Field types, picklists and the external-id field holding kontor's id, per object;
    /// and, the first time, the Salesforce stages' places in the deal pipeline.
    async fn describe(&mut self, api: &mut Api<'_>) -> Result<(), Stop> {
        let mut settings = self.conn.settings.clone();
        for (sf_type, _) in OBJECTS {
            let d = api.describe(sf_type).await?;
            let mut fields = BTreeMap::new();
            settings.external_ids.remove(*sf_type);
            for f in d["fields"].as_array().into_iter().flatten() {
                let Some(name) = f["name"].as_str() else {
                    continue;
                };
                let values = f["picklistValues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["active"].as_bool().unwrap_or(true))
                    .filter_map(|p| p["value"].as_str().map(str::to_string))
                    .collect();
                fields.insert(
                    name.to_string(),
                    SalesforceField {
                        kind: f["type"].as_str().unwrap_or("string").to_string(),
                        createable: f["createable"].as_bool().unwrap_or(false),
                        updateable: f["updateable"].as_bool().unwrap_or(false),
                        values,
                    },
                );
                if f["externalId"].as_bool() == Some(true)
                    && name.to_ascii_lowercase().starts_with("kontor")
                {
                    settings
                        .external_ids
                        .insert((*sf_type).to_string(), name.to_string());
                }
            }
            settings.fields.insert((*sf_type).to_string(), fields);
        }
        if settings.stages.is_empty() {
            settings.stages = self.default_stages(&settings).await?;
        }
        // What the describe found goes into the settings as they are now: an admin may have
        // saved some while it ran.
        let mut now = self
            .store
            .salesforce_connection(self.account)
            .await?
            .map_or(settings.clone(), |c| c.settings);
        now.fields = settings.fields;
        now.external_ids = settings.external_ids;
        if now.stages.is_empty() {
            now.stages = settings.stages;
        }
        now.described_at = Some(now_ms());
        self.store
            .set_salesforce_settings(self.account, &now)
            .await?;
        self.conn.settings = now;
        Ok(())
    }

    /// Salesforce stages to the pipeline's: by label, then won and lost by name, then the
    /// open ones in order.
    async fn default_stages(
        &self,
        settings: &SalesforceSettings,
    ) -> Result<BTreeMap<String, String>, Stop> {
        let mut out = BTreeMap::new();
        let Some(ot) = self.store.object_type(self.account, "0-3").await? else {
            return Ok(out);
        };
        let pipelines = self.store.pipelines(self.account, &ot).await?;
        let Some(p) = pipelines
            .iter()
            .find(|p| p.id == settings.pipeline)
            .or(pipelines.first())
        else {
            return Ok(out);
        };
        let closed = |s: &kontor_domain::pipeline::Stage| {
            s.metadata.get("isClosed").map(String::as_str) == Some("true")
        };
        let won = p.stages.iter().find(|s| {
            closed(s) && s.metadata.get("probability").map(String::as_str) == Some("1.0")
        });
        let lost = p.stages.iter().find(|s| {
            closed(s) && s.metadata.get("probability").map(String::as_str) != Some("1.0")
        });
        let open: Vec<_> = p.stages.iter().filter(|s| !closed(s)).collect();
        let sf_stages = settings
            .fields
            .get("Opportunity")
            .and_then(|f| f.get("StageName"))
            .map(|f| f.values.clone())
            .unwrap_or_default();
        let open_sf: Vec<&String> = sf_stages
            .iter()
            .filter(|s| !s.contains("Won") && !s.contains("Lost"))
            .collect();
        for s in &sf_stages {
            let standard = STANDARD_STAGES
                .iter()
                .find(|(sf, _)| sf == s)
                .and_then(|(_, k)| p.stages.iter().find(|x| x.id == *k));
            let by_label =
                standard.or_else(|| p.stages.iter().find(|x| x.label.eq_ignore_ascii_case(s)));
            let target = by_label.or_else(|| {
                if s.contains("Won") {
                    won
                } else if s.contains("Lost") {
                    lost
                } else {
                    let i = open_sf.iter().position(|x| *x == s).unwrap_or(0);
                    (!open.is_empty())
                        .then(|| open[(i * open.len() / open_sf.len().max(1)).min(open.len() - 1)])
                }
            });
            if let Some(t) = target {
                out.insert(s.clone(), t.id.clone());
            }
        }
        Ok(out)
    }

    /// Owners for the Salesforce users these records name that have none yet: read from
    /// Salesforce (one query), matched by e-mail, or made as Salesforce-only owners. Queues
    /// own no kontor records.
    async fn ensure_owners(&mut self, api: &mut Api<'_>, records: &[Value]) -> Result<(), Stop> {
        let mut missing: Vec<String> = records
            .iter()
            .filter_map(|r| r["OwnerId"].as_str())
            .filter(|u| u.starts_with("005") && !self.owners.contains_key(*u))
            .map(|u| u.replace('\'', ""))
            .collect();
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(COLLECTION) {
            let list = chunk
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut page = api
                .query(
                    &format!(
                        "SELECT Id, Email, FirstName, LastName FROM User WHERE Id IN ({list})"
                    ),
                    false,
                )
                .await?;
            loop {
                for u in &page.records {
                    let Some(id) = u["Id"].as_str() else { continue };
                    let owner = self
                        .store
                        .salesforce_owner(
                            self.account,
                            id,
                            u["Email"].as_str().unwrap_or(""),
                            u["FirstName"].as_str().unwrap_or(""),
                            u["LastName"].as_str().unwrap_or(""),
                        )
                        .await?;
                    self.owners.insert(id.to_string(), owner);
                }
                match page.next.take() {
                    Some(next) => page = api.query_more(&next).await?,
                    None => break,
                }
            }
        }
        Ok(())
    }

    async fn cursor(&self, sf_type: &str) -> Result<PullCursor, Stop> {
        Ok(self
            .store
            .salesforce_cursor(self.account, sf_type)
            .await?
            .unwrap_or_else(|| PullCursor {
                deleted_from: soql_time(self.conn.connected_at - 60_000),
                ..PullCursor::default()
            }))
    }

    async fn pull(
        &mut self,
        api: &mut Api<'_>,
        sf_type: &str,
        kontor: &str,
        mappings: &[SalesforceMapping],
        until: i64,
    ) -> Result<(), Stop> {
        let Some(ot) = self.store.object_type(self.account, kontor).await? else {
            return Ok(());
        };
        let described = self
            .conn
            .settings
            .fields
            .get(sf_type)
            .cloned()
            .unwrap_or_default();
        let maps: Vec<&SalesforceMapping> = mappings
            .iter()
            .filter(|m| m.sf_type == sf_type && m.rule != RULE_NONE)
            .filter(|m| described.is_empty() || described.contains_key(&m.sf_field))
            .collect();
        let mut fields: Vec<&str> = vec!["Id", "SystemModstamp"];
        let mut want = |f: &'static str| {
            if (described.is_empty() || described.contains_key(f)) && !fields.contains(&f) {
                fields.push(f);
            }
        };
        want("OwnerId");
        if sf_type == "Lead" {
            want("IsConverted");
            want("ConvertedContactId");
        }
        if sf_type == "Lead" || sf_type == "Contact" {
            want("Email");
        }
        if sf_type == "Contact" || sf_type == "Opportunity" {
            want("AccountId");
        }
        if sf_type == "Task" {
            want("WhoId");
            want("WhatId");
        }
        for m in &maps {
            if !fields.contains(&m.sf_field.as_str()) {
                fields.push(&m.sf_field);
            }
        }
        let mut cursor = self.cursor(sf_type).await?;
        // Records whose error an admin retries are read again by id, the cursor unmoved.
        let retries = self
            .store
            .salesforce_pull_retries(self.account, sf_type)
            .await?;
        for chunk in retries.chunks(COLLECTION) {
            let list = chunk
                .iter()
                .map(|id| format!("'{}'", id.replace('\'', "")))
                .collect::<Vec<_>>()
                .join(", ");
            let page = api
                .query(
                    &format!(
                        "SELECT {} FROM {sf_type} WHERE Id IN ({list})",
                        fields.join(", ")
                    ),
                    false,
                )
                .await?;
            self.ensure_owners(api, &page.records).await?;
            let now = iso(now_ms());
            let rows: Vec<PulledRecord> = page
                .records
                .iter()
                .map(|r| self.pulled(sf_type, r, &maps, &now))
                .collect();
            if !rows.is_empty() {
                self.store
                    .apply_salesforce_pull(self.account, self.org(), &ot, sf_type, rows, &cursor)
                    .await?;
                self.associate(&ot, &page.records).await?;
            }
        }
        let soql = format!(
            "SELECT {} FROM {sf_type}{} ORDER BY SystemModstamp, Id",
            fields.join(", "),
            window(&cursor, until)
        );
        let mut page: QueryPage = api.query(&soql, false).await?;
        loop {
            let now = iso(now_ms());
            self.ensure_owners(api, &page.records).await?;
            let mut rows = Vec::with_capacity(page.records.len());
            for r in &page.records {
                let (Some(id), Some(stamp)) = (r["Id"].as_str(), r["SystemModstamp"].as_str())
                else {
                    continue;
                };
                cursor.modstamp = stamp.to_string();
                cursor.last_id = id.to_string();
                rows.push(self.pulled(sf_type, r, &maps, &now));
            }
            if !rows.is_empty() {
                self.store
                    .apply_salesforce_pull(self.account, self.org(), &ot, sf_type, rows, &cursor)
                    .await?;
                self.associate(&ot, &page.records).await?;
                self.renew().await?;
            }
            match page.next.take() {
                Some(next) => page = api.query_more(&next).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// References become associations (the default type; one already there is left as it
    /// is): a contact's or an opportunity's account its company, a task's `WhoId` its contact
    /// and `WhatId` its company or deal.
    async fn associate(
        &self,
        ot: &kontor_store::ObjectType,
        records: &[Value],
    ) -> Result<(), Stop> {
        let pairs: Vec<(&str, &str)> = records
            .iter()
            .flat_map(|r| {
                let own = r["Id"].as_str();
                ["AccountId", "WhoId", "WhatId"]
                    .into_iter()
                    .filter_map(move |f| Some((own?, r[f].as_str()?)))
            })
            .collect();
        if pairs.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
        let linked = self.store.salesforce_records(self.account, &ids).await?;
        let mut by_type: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
        for (own, parent) in &pairs {
            let Some(from) = linked.get(*own).filter(|(t, _)| *t == ot.type_id) else {
                continue;
            };
            let Some((to_type, to)) = linked.get(*parent) else {
                continue;
            };
            by_type
                .entry(to_type.as_str())
                .or_default()
                .push((from.1, *to));
        }
        let actor = kontor_store::Actor {
            source: kontor_domain::ChangeSource::Salesforce,
            source_id: Some(self.conn.org_id.clone()),
            user_id: None,
        };
        for (to_type, pairs) in by_type {
            let Some(to) = self.store.object_type(self.account, to_type).await? else {
                continue;
            };
            if to.type_id == ot.type_id {
                continue;
            }
            self.store
                .associate_pairs(self.account, ot, &to, &pairs, &[], &actor)
                .await?;
        }
        Ok(())
    }

    /// A Salesforce record as kontor values.
    fn pulled(
        &self,
        sf_type: &str,
        r: &Value,
        maps: &[&SalesforceMapping],
        now: &str,
    ) -> PulledRecord {
        let id = r["Id"].as_str().unwrap_or_default().to_string();
        let mut values = Vec::with_capacity(maps.len());
        for m in maps {
            let raw = &r[&m.sf_field];
            let v = match (m.sf_field.as_str(), m.property.as_str()) {
                ("OwnerId", _) => raw
                    .as_str()
                    .and_then(|u| self.owners.get(u))
                    .map(|o| o.to_string()),
                ("StageName", "dealstage") => raw
                    .as_str()
                    .and_then(|s| self.conn.settings.stages.get(s))
                    .cloned(),
                ("Status" | "Priority", _) if sf_type == "Task" => {
                    super::task_value(&m.sf_field, raw.as_str(), None)
                }
                _ => from_salesforce(raw),
            };
            values.push((m.property.clone(), v, m.rule.clone()));
        }
        let mut system = Map::new();
        if let Some(p) = id_property(sf_type) {
            system.insert(p.into(), json!(id));
            system.insert("salesforcelastsynctime".into(), json!(now));
            if let Some(owner) = r["OwnerId"].as_str() {
                system.insert("salesforceownerid".into(), json!(owner));
            }
        }
        if sf_type == "Opportunity" {
            system.insert("pipeline".into(), json!(self.conn.settings.pipeline));
        }
        let converted_to = (r["IsConverted"].as_bool() == Some(true))
            .then(|| r["ConvertedContactId"].as_str().map(str::to_string))
            .flatten();
        PulledRecord {
            sf_id: id,
            sf_type: sf_type.to_string(),
            values,
            system,
            match_email: r["Email"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(str::to_string),
            converted_to,
        }
    }

    /// The deleted feed since the cursor's window start: deletes and merges. When Salesforce
    /// no longer has the whole window, every id is read again and linked records missing
    /// from Salesforce count as deleted.
    ///
    /// Returns the feed's `latestDateCovered`: the last whole minute of Salesforce's clock.
    async fn pull_deleted(&mut self, api: &mut Api<'_>, sf_type: &str) -> Result<i64, Stop> {
        let mut cursor = self.cursor(sf_type).await?;
        let start =
            parse_instant(&cursor.deleted_from).unwrap_or_else(|| self.conn.connected_at - 60_000);
        // The feed counts in whole minutes and refuses an empty window; Salesforce ends the
        // window at its own current minute (`latestDateCovered`), whatever this clock says.
        let end = now_ms().max(start + 120_000);
        let v = match api
            .deleted(sf_type, &soql_time(start), &soql_time(end))
            .await
        {
            Ok(v) => v,
            // The start is further back than the feed keeps (a long pause): everything is
            // read again from now on.
            Err(SfError::Refused { code, .. }) if code == "INVALID_REPLICATION_DATE" => {
                json!({"deletedRecords": [], "earliestDateAvailable": soql_time(now_ms()), "latestDateCovered": soql_time(now_ms())})
            }
            Err(e) => return Err(e.into()),
        };
        let latest = v["latestDateCovered"]
            .as_str()
            .and_then(sf_instant)
            .unwrap_or(start);
        let earliest = v["earliestDateAvailable"].as_str().and_then(sf_instant);
        let mut deleted: Vec<String> = v["deletedRecords"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect();
        if earliest.is_some_and(|e| e > start) {
            deleted.extend(self.missing(api, sf_type).await?);
        }
        let refs: Vec<&str> = deleted.iter().map(String::as_str).collect();
        let linked = self.store.salesforce_linked(self.account, &refs).await?;
        let mut with_master: Vec<(String, Option<String>)> =
            linked.iter().map(|id| (id.clone(), None)).collect();
        if matches!(sf_type, "Lead" | "Contact" | "Account") && !linked.is_empty() {
            let mut masters = HashMap::new();
            for chunk in linked.chunks(COLLECTION) {
                let list = chunk
                    .iter()
                    .map(|id| format!("'{}'", id.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut page = api
                    .query(
                        &format!("SELECT Id, MasterRecordId FROM {sf_type} WHERE Id IN ({list})"),
                        true,
                    )
                    .await?;
                loop {
                    for r in &page.records {
                        if let (Some(id), Some(m)) =
                            (r["Id"].as_str(), r["MasterRecordId"].as_str())
                        {
                            masters.insert(id.to_string(), m.to_string());
                        }
                    }
                    match page.next.take() {
                        Some(n) => page = api.query_more(&n).await?,
                        None => break,
                    }
                }
            }
            for (id, m) in &mut with_master {
                *m = masters.get(id).cloned();
            }
        }
        cursor.deleted_from = soql_time(latest.max(start));
        if earliest.is_some_and(|e| e > start) {
            // Read everything again: links keep it from creating anything twice.
            cursor.modstamp.clear();
            cursor.last_id.clear();
        }
        self.store
            .apply_salesforce_deletes(self.account, self.org(), sf_type, &with_master, &cursor)
            .await?;
        Ok(latest)
    }

    /// Linked ids of `sf_type` that Salesforce no longer has.
    async fn missing(&mut self, api: &mut Api<'_>, sf_type: &str) -> Result<Vec<String>, Stop> {
        let mut present = std::collections::HashSet::new();
        let mut page = api
            .query(&format!("SELECT Id FROM {sf_type}"), false)
            .await?;
        loop {
            present.extend(
                page.records
                    .iter()
                    .filter_map(|r| r["Id"].as_str().map(str::to_string)),
            );
            match page.next.take() {
                Some(n) => page = api.query_more(&n).await?,
                None => break,
            }
        }
        Ok(self
            .store
            .salesforce_links_of_type(self.account, sf_type)
            .await?
            .into_iter()
            .filter(|id| !present.contains(id))
            .collect())
    }
}

/// ` WHERE …`: past the cursor in (`SystemModstamp`, `Id`) order, and before `until`, a
/// whole minute of Salesforce's clock that has passed. Salesforce keeps `SystemModstamp` to
/// the second, so a record written later in a second already read would share its stamp and
/// fall behind the cursor; no record can still get a stamp before a minute that has passed.
fn window(c: &PullCursor, until: i64) -> String {
    let before = format!("SystemModstamp < {}", soql_time(until));
    match sf_instant(&c.modstamp) {
        Some(ms) if !c.last_id.is_empty() => {
            let t = soql_time(ms);
            let id = c.last_id.replace('\'', "");
            format!(" WHERE (SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > '{id}')) AND {before}")
        }
        _ => format!(" WHERE {before}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_resumes_after_the_last_record_with_the_id_tie_break() {
        let until = parse_instant("2026-12-06T20:18:00Z").unwrap();
        assert_eq!(
            window(&PullCursor::default(), until),
            " WHERE SystemModstamp < 2026-12-06T20:18:00Z"
        );
        let c = PullCursor {
            modstamp: "2026-12-06T20:17:23.000+0000".into(),
            last_id: "003000000000001AAA".into(),
            deleted_from: String::new(),
        };
        assert_eq!(
            window(&c, until),
            " WHERE (SystemModstamp > 2026-12-06T20:17:23Z OR (SystemModstamp = 2026-12-06T20:17:23Z AND Id > '003000000000001AAA')) AND SystemModstamp < 2026-12-06T20:18:00Z"
        );
    }
}
