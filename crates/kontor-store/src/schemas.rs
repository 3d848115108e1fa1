//! Custom object schemas (`/crm-object-schemas/v3/schemas`).

use crate::objects::ObjectType;
use crate::properties::PropertyInput;
use crate::{allocate, Store, StoreError, StoreResult};
use kontor_domain::object_type::system_properties;
use kontor_domain::time::now_ms;
use kontor_domain::{BuiltinObject, PropertyDef};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomSchema {
    pub object_type_id: String,
    pub id: i64,
    pub name: String,
    pub fully_qualified_name: String,
    pub label_singular: String,
    pub label_plural: String,
    pub description: String,
    pub primary_display_property: Option<String>,
    pub secondary_display_properties: Vec<String>,
    pub required_properties: Vec<String>,
    pub searchable_properties: Vec<String>,
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// ObjectSchemaEgg / ObjectTypeDefinitionPatch as received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub labels: Option<Labels>,
    pub primary_display_property: Option<String>,
    pub secondary_display_properties: Option<Vec<String>>,
    pub required_properties: Option<Vec<String>>,
    pub searchable_properties: Option<Vec<String>>,
    pub properties: Option<Vec<PropertyInput>>,
    pub associated_objects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Labels {
    pub singular: Option<String>,
    pub plural: Option<String>,
}

fn bad(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::validation("INVALID_SCHEMA", message, Some(field.to_string()))
}

fn valid_schema_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic())
        && name.len() <= 100
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl Store {
    pub async fn custom_schemas(
        &self,
        account: i64,
        archived: bool,
    ) -> StoreResult<Vec<CustomSchema>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT def FROM schemas WHERE account_id = $1 AND archived = $2 ORDER BY created_at, object_type")
            .bind(account)
            .bind(archived as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(d,)| Ok(serde_json::from_str(&d)?))
            .collect()
    }

    /// Finds a live custom schema by `2-N`, fully qualified name (`p{account}_{name}`,
    /// `p_{name}`) or plain name.
    pub async fn custom_schema(
        &self,
        account: i64,
        key: &str,
    ) -> StoreResult<Option<CustomSchema>> {
        let prefix = format!("p{account}_");
        let name = key
            .strip_prefix(&prefix)
            .or_else(|| key.strip_prefix("p_"))
            .unwrap_or(key);
        Ok(self
            .custom_schemas(account, false)
            .await?
            .into_iter()
            .find(|s| s.object_type_id == key || s.name.eq_ignore_ascii_case(name)))
    }

    pub async fn create_schema(
        &self,
        account: i64,
        input: SchemaInput,
    ) -> StoreResult<CustomSchema> {
        let name = input
            .name
            .clone()
            .ok_or_else(|| bad("name", "name is required"))?;
        if !valid_schema_name(&name) {
            return Err(bad("name", format!("{name:?} is not a valid object name: letters, digits and underscores, starting with a letter")));
        }
        if BuiltinObject::find(&name).is_some()
            || self.custom_schema(account, &name).await?.is_some()
        {
            return Err(StoreError::Conflict {
                message: format!("An object type named '{name}' already exists."),
                existing_id: None,
            });
        }
        let labels = input
            .labels
            .clone()
            .ok_or_else(|| bad("labels", "labels.singular and labels.plural are required"))?;
        let singular = labels
            .singular
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("labels.singular", "is required"))?;
        let plural = labels
            .plural
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("labels.plural", "is required"))?;
        let prop_inputs = input.properties.clone().unwrap_or_default();
        let now = now_ms();
        let group = format!("{}_information", name.to_lowercase());
        let mut defs: Vec<PropertyDef> =
            system_properties("hs_createdate", "hs_lastmodifieddate", &group);
        for d in &mut defs {
            d.hubspot_defined = true;
            d.created_at = now;
            d.updated_at = now;
        }
        let mut owner = PropertyDef::new(
            "hubspot_owner_id",
            "Owner",
            kontor_domain::PropertyType::Enumeration,
            &group,
        );
        owner.hubspot_defined = true;
        defs.push(owner);
        for (i, p) in prop_inputs.into_iter().enumerate() {
            let mut p = p;
            p.group_name.get_or_insert_with(|| group.clone());
            let def = check_property(p).map_err(|e| match e {
                StoreError::Validation {
                    message,
                    code,
                    in_field,
                } => StoreError::Validation {
                    message,
                    code,
                    in_field: Some(format!("properties[{i}].{}", in_field.unwrap_or_default())),
                },
                e => e,
            })?;
            if defs.iter().any(|d| d.name == def.name) {
                return Err(bad(
                    &format!("properties[{i}].name"),
                    format!("property {} is defined twice", def.name),
                ));
            }
            defs.push(PropertyDef {
                created_at: now,
                updated_at: now,
                ..def
            });
        }
        let known = |n: &String| defs.iter().any(|d| &d.name == n);
        let required = input.required_properties.clone().unwrap_or_default();
        let searchable = input.searchable_properties.clone().unwrap_or_default();
        let secondary = input
            .secondary_display_properties
            .clone()
            .unwrap_or_default();
        for (field, list) in [
            ("requiredProperties", &required),
            ("searchableProperties", &searchable),
            ("secondaryDisplayProperties", &secondary),
        ] {
            if let Some(n) = list.iter().find(|n| !known(n)) {
                return Err(bad(
                    field,
                    format!("{n:?} is not one of the schema's properties"),
                ));
            }
        }
        if let Some(p) = input
            .primary_display_property
            .as_ref()
            .filter(|p| !known(p))
        {
            return Err(bad(
                "primaryDisplayProperty",
                format!("{p:?} is not one of the schema's properties"),
            ));
        }
        let mut associated = Vec::new();
        for (i, a) in input
            .associated_objects
            .clone()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let ot = self.object_type(account, a).await?.ok_or_else(|| {
                bad(
                    &format!("associatedObjects[{i}]"),
                    format!("{a:?} is not an object type"),
                )
            })?;
            associated.push(ot);
        }
        let mut tx = self.write().await?;
        let n = allocate(&mut tx, account, "schema", 1).await?;
        let schema = CustomSchema {
            object_type_id: format!("2-{n}"),
            id: n,
            fully_qualified_name: format!("p{account}_{name}"),
            name: name.clone(),
            label_singular: singular,
            label_plural: plural,
            description: input.description.clone().unwrap_or_default(),
            primary_display_property: input.primary_display_property.clone(),
            secondary_display_properties: secondary,
            required_properties: required,
            searchable_properties: searchable,
            archived: false,
            created_at: now,
            updated_at: now,
        };
        sqlx::query("INSERT INTO schemas (account_id, object_type, name, def, archived, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $5)")
            .bind(account)
            .bind(&schema.object_type_id)
            .bind(&name)
            .bind(serde_json::to_string(&schema)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO property_groups (account_id, object_type, name, label, display_order, archived) VALUES ($1, $2, $3, $4, 0, 0)")
            .bind(account)
            .bind(&schema.object_type_id)
            .bind(&group)
            .bind(format!("{} information", schema.label_singular))
            .execute(&mut *tx)
            .await?;
        for (i, d) in defs.iter_mut().enumerate() {
            if d.display_order < 0 {
                d.display_order = i as i64;
            }
            sqlx::query("INSERT INTO properties (account_id, object_type, name, def, archived) VALUES ($1, $2, $3, $4, 0)")
                .bind(account)
                .bind(&schema.object_type_id)
                .bind(&d.name)
                .bind(serde_json::to_string(&d)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let me = ObjectType::custom(&schema);
        for other in &associated {
            self.association_types(account, &me, other).await?;
        }
        Ok(schema)
    }

    pub async fn update_schema(
        &self,
        account: i64,
        key: &str,
        input: SchemaInput,
    ) -> StoreResult<CustomSchema> {
        let mut s = self
            .custom_schema(account, key)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("object type {key} does not exist")))?;
        let defs = self.properties(account, &s.object_type_id, false).await?;
        let known = |n: &String| defs.iter().any(|d| &d.name == n);
        if let Some(l) = input.labels {
            if let Some(v) = l.singular.filter(|v| !v.trim().is_empty()) {
                s.label_singular = v;
            }
            if let Some(v) = l.plural.filter(|v| !v.trim().is_empty()) {
                s.label_plural = v;
            }
        }
        if let Some(d) = input.description {
            s.description = d;
        }
        for (field, new, slot) in [
            (
                "requiredProperties",
                input.required_properties,
                &mut s.required_properties,
            ),
            (
                "searchableProperties",
                input.searchable_properties,
                &mut s.searchable_properties,
            ),
            (
                "secondaryDisplayProperties",
                input.secondary_display_properties,
                &mut s.secondary_display_properties,
            ),
        ] {
            if let Some(list) = new {
                if let Some(n) = list.iter().find(|n| !known(n)) {
                    return Err(bad(
                        field,
                        format!("{n:?} is not one of the object's properties"),
                    ));
                }
                *slot = list;
            }
        }
        if let Some(p) = input.primary_display_property {
            if !known(&p) {
                return Err(bad(
                    "primaryDisplayProperty",
                    format!("{p:?} is not one of the object's properties"),
                ));
            }
            s.primary_display_property = Some(p);
        }
        s.updated_at = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("UPDATE schemas SET def = $1, updated_at = $2 WHERE account_id = $3 AND object_type = $4")
            .bind(serde_json::to_string(&s)?)
            .bind(s.updated_at)
            .bind(account)
            .bind(&s.object_type_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Archives a schema. Refused while it still has live records, as HubSpot does.
    pub async fn archive_schema(&self, account: i64, key: &str) -> StoreResult<()> {
        let mut s = self
            .custom_schema(account, key)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("object type {key} does not exist")))?;
        let ot = ObjectType::custom(&s);
        let n = self.count_records(account, &ot, false).await?;
        if n > 0 {
            return Err(StoreError::validation(
                "OBJECT_TYPE_HAS_RECORDS",
                format!(
                    "{} still has {n} records; delete them before deleting the object type",
                    s.name
                ),
                None,
            ));
        }
        s.archived = true;
        s.updated_at = now_ms();
        let mut tx = self.write().await?;
        sqlx::query("UPDATE schemas SET def = $1, archived = 1, updated_at = $2 WHERE account_id = $3 AND object_type = $4")
            .bind(serde_json::to_string(&s)?)
            .bind(s.updated_at)
            .bind(account)
            .bind(&s.object_type_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// Checks a property given inline in a schema (no group lookup: the schema makes its group).
fn check_property(input: PropertyInput) -> StoreResult<PropertyDef> {
    use kontor_domain::PropertyType;
    let name = input.name.clone().ok_or_else(|| {
        StoreError::validation("INVALID_PROPERTY", "name is required", Some("name".into()))
    })?;
    if !PropertyDef::valid_name(&name) {
        return Err(StoreError::validation(
            "INVALID_PROPERTY",
            format!("{name:?} is not a valid property name"),
            Some("name".into()),
        ));
    }
    let label = input.label.clone().unwrap_or_else(|| name.clone());
    let kind_s = input.kind.clone().unwrap_or_else(|| "string".into());
    let kind = PropertyType::parse(&kind_s).ok_or_else(|| {
        StoreError::validation(
            "INVALID_PROPERTY",
            format!("{kind_s:?} is not a property type"),
            Some("type".into()),
        )
    })?;
    let field_type = input
        .field_type
        .clone()
        .unwrap_or_else(|| kind.default_field_type().to_string());
    if !kind.allows_field_type(&field_type) {
        return Err(StoreError::validation(
            "INVALID_PROPERTY",
            format!("fieldType {field_type:?} does not go with type {kind_s:?}"),
            Some("fieldType".into()),
        ));
    }
    let mut def = PropertyDef::new(
        &name,
        &label,
        kind,
        input.group_name.as_deref().unwrap_or_default(),
    )
    .field(&field_type);
    def.description = input.description.unwrap_or_default();
    def.has_unique_value = input.has_unique_value.unwrap_or(false);
    def.options = input
        .options
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, o)| kontor_domain::PropertyOption {
            label: o.label,
            value: o.value,
            hidden: o.hidden,
            display_order: o.display_order.unwrap_or(i as i64),
            description: o.description.unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    if kind == PropertyType::Bool && def.options.is_empty() {
        def = def.with_options(&[("true", "Yes"), ("false", "No")]);
    }
    if kind == PropertyType::Enumeration && def.options.is_empty() {
        return Err(StoreError::validation(
            "INVALID_PROPERTY",
            "an enumeration property needs at least one option",
            Some("options".into()),
        ));
    }
    if let Some(s) = input.data_sensitivity.as_deref() {
        def.sensitivity = kontor_domain::Sensitivity::parse(s).ok_or_else(|| {
            StoreError::validation(
                "INVALID_PROPERTY",
                format!("{s:?} is not a data sensitivity"),
                Some("dataSensitivity".into()),
            )
        })?;
    } else if input.sensitive == Some(true) {
        def.sensitivity = kontor_domain::Sensitivity::Sensitive;
    }
    Ok(def)
}
