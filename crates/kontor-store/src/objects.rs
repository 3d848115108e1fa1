//! Resolving object type names (`contacts`, `0-1`, `p123_cars`, `2-4`) for an account, and
//! seeding a new account's cell with the built-in property definitions.

use crate::schemas::CustomSchema;
use crate::{Store, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::BuiltinObject;
use kontor_domain::BUILTIN_OBJECTS;

/// An object type as one account sees it.
#[derive(Debug, Clone)]
pub struct ObjectType {
    pub type_id: String,
    /// The plural API name (`contacts`), or a custom object's schema name.
    pub name: String,
    pub singular: String,
    pub label_singular: String,
    pub label_plural: String,
    pub create_date: String,
    pub last_modified: String,
    pub default_properties: Vec<String>,
    pub searchable: Vec<String>,
    pub required: Vec<String>,
    /// Values a record gets on creation when it gives none: HubSpot puts a deal or a ticket
    /// without a pipeline in the default one.
    pub defaults: Vec<(String, String)>,
    pub primary_display: Option<String>,
    pub fully_qualified_name: Option<String>,
    /// Included in backups.
    pub backed_up: bool,
}

impl ObjectType {
    /// Fills in the values `props` of a record being created lacks and the type has a
    /// default for.
    pub fn fill_defaults(&self, props: &mut std::collections::BTreeMap<String, Option<String>>) {
        for (name, value) in &self.defaults {
            let v = props.entry(name.clone()).or_insert(None);
            if v.is_none() {
                *v = Some(value.clone());
            }
        }
    }

    pub fn builtin(o: &BuiltinObject) -> Self {
        let required: &[&str] = match o.name {
            "deals" => &["dealname", "pipeline", "dealstage"],
            "tickets" => &["subject", "hs_pipeline", "hs_pipeline_stage"],
            "calls" | "emails" | "meetings" | "notes" | "tasks" => &["hs_timestamp"],
            _ => &[],
        };
        Self {
            type_id: o.type_id.to_string(),
            name: o.name.to_string(),
            singular: o.singular.to_string(),
            label_singular: o.label_singular.to_string(),
            label_plural: o.label_plural.to_string(),
            create_date: o.create_date.to_string(),
            last_modified: o.last_modified.to_string(),
            default_properties: o.default_properties.iter().map(|s| s.to_string()).collect(),
            searchable: o.searchable.iter().map(|s| s.to_string()).collect(),
            required: required.iter().map(|s| s.to_string()).collect(),
            defaults: match o.name {
                "deals" => vec![("pipeline".into(), "default".into())],
                "tickets" => vec![("hs_pipeline".into(), "0".into())],
                _ => vec![],
            },
            primary_display: None,
            fully_qualified_name: None,
            backed_up: o.backed_up,
        }
    }

    pub fn custom(s: &CustomSchema) -> Self {
        Self {
            type_id: s.object_type_id.clone(),
            name: s.name.clone(),
            singular: s.name.clone(),
            label_singular: s.label_singular.clone(),
            label_plural: s.label_plural.clone(),
            create_date: "hs_createdate".into(),
            last_modified: "hs_lastmodifieddate".into(),
            default_properties: Vec::new(),
            searchable: s.searchable_properties.clone(),
            required: s.required_properties.clone(),
            defaults: Vec::new(),
            primary_display: s.primary_display_property.clone(),
            fully_qualified_name: Some(s.fully_qualified_name.clone()),
            backed_up: true,
        }
    }

    pub fn is_custom(&self) -> bool {
        self.type_id.starts_with("2-")
    }

    /// Properties returned when a request names none: the type's defaults plus the ones
    /// kontor always includes (id, create date, last modified).
    pub fn default_property_names(&self) -> Vec<String> {
        let mut v = self.default_properties.clone();
        for p in ["hs_object_id", &self.create_date, &self.last_modified] {
            if !v.iter().any(|x| x == p) {
                v.push(p.to_string());
            }
        }
        v
    }

    /// Properties kontor maintains and always includes.
    pub fn system_property_names(&self) -> [&str; 3] {
        ["hs_object_id", &self.create_date, &self.last_modified]
    }
}

impl Store {
    /// Resolves a path's `{objectType}` for an account; `None` when unknown.
    pub async fn object_type(&self, account: i64, name: &str) -> StoreResult<Option<ObjectType>> {
        if let Some(b) = BuiltinObject::find(name) {
            return Ok(Some(ObjectType::builtin(b)));
        }
        Ok(self
            .custom_schema(account, name)
            .await?
            .map(|s| ObjectType::custom(&s)))
    }

    /// Every object type of the account: built-in ones, then custom ones.
    pub async fn object_types(&self, account: i64) -> StoreResult<Vec<ObjectType>> {
        let mut v: Vec<ObjectType> = BUILTIN_OBJECTS.iter().map(ObjectType::builtin).collect();
        for s in self.custom_schemas(account, false).await? {
            v.push(ObjectType::custom(&s));
        }
        Ok(v)
    }

    /// Gives the accounts of this cell that were made before the built-in object types and
    /// properties last grew what they lack (nothing they hold changes): an account's
    /// `builtin_seed` counter says which [`BUILTIN_SEED`] it has. Accounts frozen or away for
    /// a move are left for later. Once every account has it, the cell's own counter (account
    /// 0) says so, and later opens read only that row.
    pub(crate) async fn reseed_builtins(&self) -> StoreResult<()> {
        let done: Option<(i64,)> = sqlx::query_as(
            "SELECT value FROM counters WHERE account_id = 0 AND name = 'builtin_seed'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if done.is_some_and(|(v,)| v >= BUILTIN_SEED) {
            return Ok(());
        }
        let stale = |settled: bool| {
            format!(
                "SELECT DISTINCT account_id FROM properties WHERE account_id NOT IN (SELECT account_id FROM counters WHERE name = 'builtin_seed' AND value >= $1){}",
                if settled {
                    format!(" AND {}", crate::moving::SETTLED)
                } else {
                    String::new()
                }
            )
        };
        let settled: Vec<(i64,)> = sqlx::query_as(&stale(true))
            .bind(BUILTIN_SEED)
            .fetch_all(&self.pool)
            .await?;
        for (account,) in &settled {
            self.seed_account(*account).await?;
        }
        let left: Vec<(i64,)> = sqlx::query_as(&stale(false))
            .bind(BUILTIN_SEED)
            .fetch_all(&self.pool)
            .await?;
        if left.is_empty() {
            let _w = self.lock_writes().await;
            sqlx::query("INSERT INTO counters (account_id, name, value) VALUES (0, 'builtin_seed', $1) ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value")
                .bind(BUILTIN_SEED)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Gives one account what [`Store::reseed_builtins`] gives, if it lacks it: for an account
    /// that a move held fenced while its cell was opened after an upgrade (called once a move
    /// has settled it in a cell).
    pub async fn reseed_account(&self, account: i64) -> StoreResult<()> {
        let seed: Option<(i64,)> = sqlx::query_as(
            "SELECT value FROM counters WHERE account_id = $1 AND name = 'builtin_seed'",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        if seed.is_none_or(|(v,)| v < BUILTIN_SEED) {
            self.seed_account(account).await?;
        }
        Ok(())
    }

    /// Writes the built-in property definitions and groups of every object type.
    pub(crate) async fn seed_account(&self, account: i64) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.write().await?;
        for o in BUILTIN_OBJECTS {
            sqlx::query("INSERT INTO property_groups (account_id, object_type, name, label, display_order, archived) VALUES ($1, $2, $3, $4, 0, 0) ON CONFLICT DO NOTHING")
                .bind(account)
                .bind(o.type_id)
                .bind(o.group)
                .bind(format!("{} information", o.label_singular))
                .execute(&mut *tx)
                .await?;
            for mut p in o.builtin_properties() {
                p.created_at = now;
                p.updated_at = now;
                sqlx::query("INSERT INTO properties (account_id, object_type, name, def, archived) VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING")
                    .bind(account)
                    .bind(o.type_id)
                    .bind(&p.name)
                    .bind(serde_json::to_string(&p)?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("INSERT INTO counters (account_id, name, value) VALUES ($1, 'builtin_seed', $2) ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value")
            .bind(account)
            .bind(BUILTIN_SEED)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// The version of the built-in definitions: raised when an object type or a built-in property
/// is added, so that accounts made before receive it (see [`Store::reseed_builtins`]).
/// 1: line items and leads; `hs_merged_object_ids`.
const BUILTIN_SEED: i64 = 1;
