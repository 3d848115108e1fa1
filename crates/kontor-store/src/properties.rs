//! Property definitions and property groups of an account's object types.

use crate::{Store, StoreError, StoreResult};
use kontor_domain::time::now_ms;
use kontor_domain::{PropertyDef, PropertyOption, PropertyType, Sensitivity};
use serde::Deserialize;

/// A property create or update as the API receives it; every field optional so one type
/// serves `PropertyCreate` and `PropertyUpdate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyInput {
    pub name: Option<String>,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub field_type: Option<String>,
    pub group_name: Option<String>,
    pub description: Option<String>,
    pub options: Option<Vec<OptionInput>>,
    pub display_order: Option<i64>,
    pub has_unique_value: Option<bool>,
    pub hidden: Option<bool>,
    pub form_field: Option<bool>,
    pub data_sensitivity: Option<String>,
    /// kontor's shorthand for `dataSensitivity: sensitive`.
    pub sensitive: Option<bool>,
    pub calculation_formula: Option<String>,
    pub referenced_object_type: Option<String>,
    pub external_options: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionInput {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub hidden: bool,
    pub display_order: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

fn bad(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::validation("INVALID_PROPERTY", message, Some(field.to_string()))
}

fn options(
    kind: PropertyType,
    input: Option<Vec<OptionInput>>,
) -> StoreResult<Vec<PropertyOption>> {
    let opts: Vec<PropertyOption> = input
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, o)| PropertyOption {
            label: o.label,
            value: o.value,
            hidden: o.hidden,
            display_order: o.display_order.unwrap_or(i as i64),
            description: o.description.unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    for (i, o) in opts.iter().enumerate() {
        if o.value.is_empty() || o.value.contains(';') {
            return Err(bad(
                &format!("options[{i}].value"),
                "option values must be non-empty and may not contain ';'",
            ));
        }
        if opts[..i].iter().any(|p| p.value == o.value) {
            return Err(bad(
                &format!("options[{i}].value"),
                format!("option value {:?} appears twice", o.value),
            ));
        }
    }
    if kind == PropertyType::Bool {
        let mut values: Vec<&str> = opts.iter().map(|o| o.value.as_str()).collect();
        values.sort_unstable();
        if !opts.is_empty() && values != ["false", "true"] {
            return Err(bad(
                "options",
                "a bool property has exactly the options true and false",
            ));
        }
        if opts.is_empty() {
            return Ok(vec![
                PropertyOption {
                    label: "Yes".into(),
                    value: "true".into(),
                    hidden: false,
                    display_order: 0,
                    ..Default::default()
                },
                PropertyOption {
                    label: "No".into(),
                    value: "false".into(),
                    hidden: false,
                    display_order: 1,
                    ..Default::default()
                },
            ]);
        }
    }
    if kind != PropertyType::Enumeration && kind != PropertyType::Bool && !opts.is_empty() {
        return Err(bad(
            "options",
            "only enumeration and bool properties have options",
        ));
    }
    Ok(opts)
}

fn sensitivity(input: &PropertyInput) -> StoreResult<Option<Sensitivity>> {
    if let Some(s) = &input.data_sensitivity {
        return Sensitivity::parse(s).map(Some).ok_or_else(|| {
            bad(
                "dataSensitivity",
                format!("{s:?} is not non_sensitive, sensitive or highly_sensitive"),
            )
        });
    }
    Ok(input.sensitive.map(|s| {
        if s {
            Sensitivity::Sensitive
        } else {
            Sensitivity::NonSensitive
        }
    }))
}

impl Store {
    /// Property definitions of an object type, archived ones only when asked.
    pub async fn properties(
        &self,
        account: i64,
        object_type: &str,
        archived: bool,
    ) -> StoreResult<Vec<PropertyDef>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT def FROM properties WHERE account_id = $1 AND object_type = $2 AND archived = $3",
        )
        .bind(account)
        .bind(object_type)
        .bind(archived as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut defs = rows
            .into_iter()
            .map(|(d,)| serde_json::from_str::<PropertyDef>(&d))
            .collect::<Result<Vec<_>, _>>()?;
        defs.sort_by(|a, b| {
            a.display_order
                .cmp(&b.display_order)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(defs)
    }

    pub async fn property(
        &self,
        account: i64,
        object_type: &str,
        name: &str,
    ) -> StoreResult<Option<PropertyDef>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT def FROM properties WHERE account_id = $1 AND object_type = $2 AND name = $3",
        )
        .bind(account)
        .bind(object_type)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(d,)| serde_json::from_str(&d)).transpose()?)
    }

    async fn group_exists(&self, account: i64, object_type: &str, name: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM property_groups WHERE account_id = $1 AND object_type = $2 AND name = $3 AND archived = 0",
        )
        .bind(account)
        .bind(object_type)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Validates a `PropertyCreate` into a definition without storing it.
    pub async fn check_new_property(
        &self,
        account: i64,
        object_type: &str,
        input: PropertyInput,
    ) -> StoreResult<PropertyDef> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| bad("name", "name is required"))?;
        if !PropertyDef::valid_name(&name) {
            return Err(bad("name", format!("{name:?} is not a valid property name: use lower-case letters, digits and underscores, starting with a letter")));
        }
        let label = input
            .label
            .clone()
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| bad("label", "label is required"))?;
        let kind_s = input
            .kind
            .clone()
            .ok_or_else(|| bad("type", "type is required"))?;
        let kind = PropertyType::parse(&kind_s).ok_or_else(|| {
            bad(
                "type",
                format!(
                    "{kind_s:?} is not one of string, number, date, datetime, enumeration, bool"
                ),
            )
        })?;
        let field_type = input
            .field_type
            .clone()
            .unwrap_or_else(|| kind.default_field_type().to_string());
        if !kind.allows_field_type(&field_type) {
            return Err(bad(
                "fieldType",
                format!("fieldType {field_type:?} does not go with type {kind_s:?}"),
            ));
        }
        let group = input
            .group_name
            .clone()
            .ok_or_else(|| bad("groupName", "groupName is required"))?;
        if !self.group_exists(account, object_type, &group).await? {
            return Err(bad(
                "groupName",
                format!("property group {group:?} does not exist"),
            ));
        }
        if let Some(existing) = self.property(account, object_type, &name).await? {
            if !existing.archived {
                return Err(StoreError::Conflict {
                    message: format!("A property named '{name}' already exists."),
                    existing_id: None,
                });
            }
        }
        let mut def = PropertyDef::new(&name, &label, kind, &group).field(&field_type);
        def.sensitivity = sensitivity(&input)?.unwrap_or_default();
        def.options = options(kind, input.options)?;
        if kind == PropertyType::Enumeration
            && def.options.is_empty()
            && field_type != "booleancheckbox"
        {
            return Err(bad(
                "options",
                "an enumeration property needs at least one option",
            ));
        }
        def.description = input.description.unwrap_or_default();
        def.display_order = input.display_order.unwrap_or(-1);
        def.has_unique_value = input.has_unique_value.unwrap_or(false);
        def.hidden = input.hidden.unwrap_or(false);
        def.form_field = input.form_field.unwrap_or(false);
        if def.has_unique_value && !matches!(kind, PropertyType::String | PropertyType::Number) {
            return Err(bad(
                "hasUniqueValue",
                "only string and number properties can require unique values",
            ));
        }
        let now = now_ms();
        def.created_at = now;
        def.updated_at = now;
        Ok(def)
    }

    pub async fn create_property(
        &self,
        account: i64,
        object_type: &str,
        input: PropertyInput,
    ) -> StoreResult<PropertyDef> {
        let def = self.check_new_property(account, object_type, input).await?;
        self.insert_properties(account, object_type, std::slice::from_ref(&def))
            .await?;
        Ok(def)
    }

    /// Stores already-checked definitions in one transaction (an archived one of the same
    /// name is replaced).
    pub async fn insert_properties(
        &self,
        account: i64,
        object_type: &str,
        defs: &[PropertyDef],
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        for def in defs {
            sqlx::query("DELETE FROM properties WHERE account_id = $1 AND object_type = $2 AND name = $3 AND archived = 1")
                .bind(account)
                .bind(object_type)
                .bind(&def.name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO properties (account_id, object_type, name, def, archived) VALUES ($1, $2, $3, $4, 0)")
                .bind(account)
                .bind(object_type)
                .bind(&def.name)
                .bind(serde_json::to_string(def)?)
                .execute(&mut *tx)
                .await
                .map_err(|e| match e.as_database_error().map(|d| d.is_unique_violation()) {
                    Some(true) => StoreError::Conflict { message: format!("A property named '{}' already exists.", def.name), existing_id: None },
                    _ => e.into(),
                })?;
            // Records may hold values of an archived property of the same name.
            Self::open_index_build(&mut tx, account, object_type, &def.name).await?;
        }
        tx.commit().await
    }

    pub async fn update_property(
        &self,
        account: i64,
        object_type: &str,
        name: &str,
        input: PropertyInput,
    ) -> StoreResult<PropertyDef> {
        let mut def = self
            .property(account, object_type, name)
            .await?
            .filter(|d| !d.archived)
            .ok_or_else(|| StoreError::not_found(format!("property {name} does not exist")))?;
        let kind_before = def.kind;
        if def.read_only_value {
            return Err(bad(
                name,
                format!("{name} is maintained by kontor; its definition is read-only"),
            ));
        }
        if let Some(k) = &input.kind {
            let kind = PropertyType::parse(k)
                .ok_or_else(|| bad("type", format!("{k:?} is not a property type")))?;
            if kind != def.kind && def.hubspot_defined {
                return Err(bad(
                    "type",
                    "the type of a built-in property cannot be changed",
                ));
            }
            def.kind = kind;
        }
        if let Some(ft) = input.field_type.clone() {
            def.field_type = ft;
        }
        if !def.kind.allows_field_type(&def.field_type) {
            return Err(bad(
                "fieldType",
                format!(
                    "fieldType {:?} does not go with type {:?}",
                    def.field_type,
                    def.kind.as_str()
                ),
            ));
        }
        if let Some(u) = input.has_unique_value {
            if u != def.has_unique_value {
                return Err(bad(
                    "hasUniqueValue",
                    "hasUniqueValue cannot be changed once a property exists",
                ));
            }
        }
        if let Some(g) = &input.group_name {
            if !self.group_exists(account, object_type, g).await? {
                return Err(bad(
                    "groupName",
                    format!("property group {g:?} does not exist"),
                ));
            }
            def.group_name = g.clone();
        }
        if let Some(l) = input.label.clone() {
            if l.trim().is_empty() {
                return Err(bad("label", "label may not be empty"));
            }
            def.label = l;
        }
        if let Some(s) = sensitivity(&input)? {
            def.sensitivity = s;
        }
        if let Some(d) = input.description.clone() {
            def.description = d;
        }
        if input.options.is_some() {
            if kontor_domain::pipeline::is_pipeline_property(object_type, name) {
                return Err(bad(
                    "options",
                    format!("the options of {name} are pipelines or their stages: change them through /crm/v3/pipelines"),
                ));
            }
            def.options = options(def.kind, input.options)?;
        }
        if let Some(o) = input.display_order {
            def.display_order = o;
        }
        if let Some(h) = input.hidden {
            def.hidden = h;
        }
        if let Some(f) = input.form_field {
            def.form_field = f;
        }
        def.updated_at = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("UPDATE properties SET def = $1 WHERE account_id = $2 AND object_type = $3 AND name = $4")
            .bind(serde_json::to_string(&def)?)
            .bind(account)
            .bind(object_type)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if def.kind != kind_before {
            // Its values are keyed by type: the index is built again.
            Self::open_index_build(&mut tx, account, object_type, name).await?;
        }
        tx.commit().await?;
        Ok(def)
    }

    pub async fn archive_property(
        &self,
        account: i64,
        object_type: &str,
        name: &str,
    ) -> StoreResult<()> {
        let Some(mut def) = self.property(account, object_type, name).await? else {
            return Err(StoreError::not_found(format!(
                "property {name} does not exist"
            )));
        };
        if def.archived {
            return Ok(());
        }
        if def.hubspot_defined {
            return Err(bad(
                name,
                format!("{name} is a built-in property and cannot be archived"),
            ));
        }
        let now = now_ms();
        def.archived = true;
        def.archived_at = Some(now);
        def.updated_at = now;
        let mut tx = self.write().await?;
        sqlx::query("UPDATE properties SET def = $1, archived = 1 WHERE account_id = $2 AND object_type = $3 AND name = $4")
            .bind(serde_json::to_string(&def)?)
            .bind(account)
            .bind(object_type)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM record_values WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM record_tokens WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM record_grams WHERE account_id = $1 AND object_type = $2 AND property = $3",
            "DELETE FROM index_builds WHERE account_id = $1 AND object_type = $2 AND property = $3",
        ] {
            sqlx::query(sql)
                .bind(account)
                .bind(object_type)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        Self::new_index_epoch(&mut tx, account).await?;
        tx.commit().await
    }

    // ---- property groups ----

    pub async fn property_groups(
        &self,
        account: i64,
        object_type: &str,
    ) -> StoreResult<Vec<PropertyGroup>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, label, display_order, archived FROM property_groups WHERE account_id = $1 AND object_type = $2 AND archived = 0 ORDER BY display_order, name",
        )
        .bind(account)
        .bind(object_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, label, display_order, archived)| PropertyGroup {
                name,
                label,
                display_order,
                archived: archived != 0,
            })
            .collect())
    }

    pub async fn create_property_group(
        &self,
        account: i64,
        object_type: &str,
        g: PropertyGroup,
    ) -> StoreResult<PropertyGroup> {
        if !PropertyDef::valid_name(&g.name) {
            return Err(bad(
                "name",
                format!("{:?} is not a valid group name", g.name),
            ));
        }
        if g.label.trim().is_empty() {
            return Err(bad("label", "label is required"));
        }
        let mut tx = self.write().await?;
        let existing: Option<(i64,)> = sqlx::query_as("SELECT archived FROM property_groups WHERE account_id = $1 AND object_type = $2 AND name = $3")
            .bind(account)
            .bind(object_type)
            .bind(&g.name)
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            Some((0,)) => {
                return Err(StoreError::Conflict {
                    message: format!("A property group named '{}' already exists.", g.name),
                    existing_id: None,
                })
            }
            Some(_) => {
                sqlx::query("UPDATE property_groups SET label = $1, display_order = $2, archived = 0 WHERE account_id = $3 AND object_type = $4 AND name = $5")
                    .bind(&g.label)
                    .bind(g.display_order)
                    .bind(account)
                    .bind(object_type)
                    .bind(&g.name)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO property_groups (account_id, object_type, name, label, display_order, archived) VALUES ($1, $2, $3, $4, $5, 0)")
                    .bind(account)
                    .bind(object_type)
                    .bind(&g.name)
                    .bind(&g.label)
                    .bind(g.display_order)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(g)
    }

    pub async fn update_property_group(
        &self,
        account: i64,
        object_type: &str,
        name: &str,
        label: Option<String>,
        display_order: Option<i64>,
    ) -> StoreResult<PropertyGroup> {
        let mut g = self
            .property_groups(account, object_type)
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| {
                StoreError::not_found(format!("property group {name} does not exist"))
            })?;
        if let Some(l) = label {
            if l.trim().is_empty() {
                return Err(bad("label", "label may not be empty"));
            }
            g.label = l;
        }
        if let Some(o) = display_order {
            g.display_order = o;
        }
        let mut tx = self.write().await?;
        sqlx::query("UPDATE property_groups SET label = $1, display_order = $2 WHERE account_id = $3 AND object_type = $4 AND name = $5")
            .bind(&g.label)
            .bind(g.display_order)
            .bind(account)
            .bind(object_type)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(g)
    }

    pub async fn archive_property_group(
        &self,
        account: i64,
        object_type: &str,
        name: &str,
    ) -> StoreResult<()> {
        if !self.group_exists(account, object_type, name).await? {
            return Err(StoreError::not_found(format!(
                "property group {name} does not exist"
            )));
        }
        let in_use = self
            .properties(account, object_type, false)
            .await?
            .into_iter()
            .filter(|p| p.group_name == name)
            .count();
        if in_use > 0 {
            return Err(bad("groupName", format!("property group {name} still holds {in_use} properties; move or archive them first")));
        }
        let mut tx = self.write().await?;
        sqlx::query("UPDATE property_groups SET archived = 1 WHERE account_id = $1 AND object_type = $2 AND name = $3")
            .bind(account)
            .bind(object_type)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyGroup {
    pub name: String,
    pub label: String,
    pub display_order: i64,
    pub archived: bool,
}
