//! Reading and editing an object type's pipelines, which live as the options of its pipeline
//! and stage properties (see `kontor_domain::pipeline`).

use crate::objects::ObjectType;
use crate::{allocate, Dialect, Store, StoreError, StoreResult};
use kontor_domain::pipeline::{self, Kind, Pipeline};
use kontor_domain::time::now_ms;
use kontor_domain::{PropertyDef, PropertyType};
use std::collections::HashSet;

/// Fresh ids for pipelines and stages, from a counter of the account, so an id once given is
/// never given again (a record's history keeps naming the stage it was in).
pub struct NewIds(std::vec::IntoIter<String>);

impl NewIds {
    /// The next fresh id. Callers reserve one for every pipeline and stage they may add.
    pub fn take(&mut self) -> String {
        self.0
            .next()
            .expect("an id is reserved for every new pipeline and stage")
    }
}

/// The first id handed out, so pipeline and stage ids never look like the small numbers of
/// the ticket stages every account starts with.
const FIRST_ID: i64 = 1_000_000;

fn invalid(e: pipeline::Invalid) -> StoreError {
    StoreError::validation("VALIDATION_ERROR", e.message, Some(e.field))
}

impl Store {
    /// The object type's pipeline and stage properties, when it has them.
    async fn pipeline_defs(
        &self,
        account: i64,
        ot: &ObjectType,
    ) -> StoreResult<(Option<PropertyDef>, Option<PropertyDef>)> {
        let (p, s) = pipeline::property_names(&ot.name);
        Ok((
            self.property(account, &ot.type_id, p).await?,
            self.property(account, &ot.type_id, s).await?,
        ))
    }

    /// The object type's pipelines in display order; none for a type without them.
    pub async fn pipelines(&self, account: i64, ot: &ObjectType) -> StoreResult<Vec<Pipeline>> {
        Ok(match self.pipeline_defs(account, ot).await? {
            (Some(p), s) => pipeline::read(Kind::of(&ot.name), &p, s.as_ref()),
            _ => Vec::new(),
        })
    }

    /// The properties a read may ask for: the stored ones, and (unless archived ones are
    /// asked for) the calculated stage properties of the type's pipelines.
    pub async fn readable_properties(
        &self,
        account: i64,
        ot: &ObjectType,
        archived: bool,
    ) -> StoreResult<Vec<PropertyDef>> {
        let mut defs = self.properties(account, &ot.type_id, archived).await?;
        if !archived {
            let (pname, _) = pipeline::property_names(&ot.name);
            if let Some(group) = defs
                .iter()
                .find(|d| d.name == pname)
                .map(|d| d.group_name.clone())
            {
                let pipelines = self.pipelines(account, ot).await?;
                defs.extend(pipeline::stage_time_properties(&pipelines, &group));
            }
        }
        Ok(defs)
    }

    /// Changes an object type's pipelines, all or nothing: `edit` changes the list (with
    /// `ids` fresh ids to give new pipelines and stages); then the rules of pipelines are
    /// checked, a pipeline or stage that went away must hold no record (live or in the recycle
    /// bin, which could otherwise come back in a stage that no longer exists), and the two
    /// properties are written back. Returns what `edit` returned and the pipelines as stored. A custom object gets its pipeline properties with its
    /// first pipeline.
    pub async fn edit_pipelines<R>(
        &self,
        account: i64,
        ot: &ObjectType,
        ids: usize,
        edit: impl FnOnce(&mut Vec<Pipeline>, &mut NewIds) -> StoreResult<R>,
    ) -> StoreResult<(R, Vec<Pipeline>)> {
        let kind = Kind::of(&ot.name);
        let (pipeline_name, stage_name) = pipeline::property_names(&ot.name);
        let (p, s) = self.pipeline_defs(account, ot).await?;
        let now = now_ms();
        let group = match &p {
            Some(p) => p.group_name.clone(),
            None => self
                .property(account, &ot.type_id, "hs_object_id")
                .await?
                .map(|d| d.group_name)
                .unwrap_or_default(),
        };
        let new_def = |name: &str, label: &str| {
            let mut d = PropertyDef::new(name, label, PropertyType::Enumeration, &group);
            d.hubspot_defined = true;
            d.created_at = now;
            d.updated_at = now;
            d
        };
        let existed = p.is_some();
        let mut p = p.unwrap_or_else(|| new_def(pipeline_name, "Pipeline"));
        let mut s = s.unwrap_or_else(|| new_def(stage_name, "Pipeline stage"));
        if !existed && !ot.type_id.starts_with("2-") {
            return Err(StoreError::validation(
                "VALIDATION_ERROR",
                format!(
                    "{} have no pipelines; deals, tickets and custom objects do",
                    ot.name
                ),
                Some("objectType".into()),
            ));
        }

        let mut tx = self.write().await?;
        let first = if ids > 0 {
            allocate(&mut tx, account, "pipeline", ids as i64).await?
        } else {
            0
        };
        let mut fresh = NewIds(
            (0..ids as i64)
                .map(|i| (FIRST_ID + first + i).to_string())
                .collect::<Vec<_>>()
                .into_iter(),
        );
        let before = pipeline::read(kind, &p, Some(&s));
        let mut after = before.clone();
        let out = edit(&mut after, &mut fresh)?;
        // Checked before completing, which would give a new deal stage a probability.
        pipeline::check(kind, &after).map_err(invalid)?;
        pipeline::complete(kind, &mut after);

        // What went away must be empty.
        let kept_pipelines: HashSet<&str> = after.iter().map(|x| x.id.as_str()).collect();
        let kept_stages: HashSet<&str> = after
            .iter()
            .flat_map(|x| x.stages.iter().map(|s| s.id.as_str()))
            .collect();
        for old in &before {
            if !kept_pipelines.contains(old.id.as_str()) {
                let (n, binned) = self
                    .records_holding(&mut tx, account, ot, pipeline_name, &old.id)
                    .await?;
                if n > 0 {
                    return Err(in_use(ot, n, binned, &format!("pipeline {:?}", old.label)));
                }
            }
            for st in &old.stages {
                if !kept_stages.contains(st.id.as_str()) {
                    let (n, binned) = self
                        .records_holding(&mut tx, account, ot, stage_name, &st.id)
                        .await?;
                    if n > 0 {
                        return Err(in_use(ot, n, binned, &format!("stage {:?}", st.label)));
                    }
                }
            }
        }

        pipeline::write(&after, &mut p, &mut s);
        p.updated_at = now;
        s.updated_at = now;
        for def in [&p, &s] {
            // An upsert: a custom object's first pipeline creates the two properties.
            sqlx::query("INSERT INTO properties (account_id, object_type, name, def, archived) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (account_id, object_type, name) DO UPDATE SET def = excluded.def, archived = 0")
                .bind(account)
                .bind(&ot.type_id)
                .bind(&def.name)
                .bind(serde_json::to_string(def)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((out, after))
    }

    /// How many records of the type hold `value` in `property`, and how many of those are in
    /// the recycle bin.
    async fn records_holding(
        &self,
        tx: &mut sqlx::AnyConnection,
        account: i64,
        ot: &ObjectType,
        property: &str,
        value: &str,
    ) -> StoreResult<(i64, i64)> {
        let value_of = match self.dialect {
            Dialect::Sqlite => "json_extract(props, '$.' || $3)",
            Dialect::Postgres => "(props::json ->> $3)",
        };
        let (n, binned): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(archived), 0) AS BIGINT) FROM records WHERE account_id = $1 AND object_type = $2 AND {value_of} = $4"
        ))
        .bind(account)
        .bind(&ot.type_id)
        .bind(property)
        .bind(value)
        .fetch_one(&mut *tx)
        .await?;
        Ok((n, binned))
    }
}

fn in_use(ot: &ObjectType, n: i64, binned: i64, what: &str) -> StoreError {
    let noun = if n == 1 {
        ot.label_singular.to_lowercase()
    } else {
        ot.label_plural.to_lowercase()
    };
    let bin = match binned {
        0 => String::new(),
        b if b == n => " (in the recycle bin)".to_string(),
        b => format!(" ({b} of them in the recycle bin)"),
    };
    let verb = if n == 1 { "is" } else { "are" };
    StoreError::validation(
        "VALIDATION_ERROR",
        format!("{n} {noun}{bin} {verb} in {what}: move them to another pipeline or stage first"),
        Some("pipelineId".into()),
    )
}
