//! What the console's board of a pipeline shows: per stage, how many records are in it (and the
//! sum of a number property, a deal's amount) and the most recently changed records, a capped
//! number per stage, so a board of 100 000 deals is two scans of the type's rows, not 100 000
//! cards.

use crate::objects::ObjectType;
use crate::records::{record_from, Record, RecordRow, RECORD_COLS};
use crate::{Dialect, Store, StoreResult};
use futures_util::TryStreamExt;
use kontor_domain::pipeline;
use std::collections::HashMap;

/// How many records hold one stage, and the sum of the number property asked for over the
/// live ones.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTotal {
    /// Live records in the stage.
    pub live: i64,
    /// Records in the recycle bin that hold the stage.
    pub binned: i64,
    pub sum: f64,
}

impl Store {
    /// A property's value in a record's JSON, with the property name bound at `$n`.
    pub(crate) fn value_of(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_extract(props, '$.' || ${n})"),
            Dialect::Postgres => format!("(props::json ->> ${n})"),
        }
    }

    /// Per stage of the object type (by stage id): its records, live and in the recycle bin,
    /// and the sum over the live ones of the number property `sum_of` (values that are not
    /// numbers count as 0).
    pub async fn stage_totals(
        &self,
        account: i64,
        ot: &ObjectType,
        sum_of: Option<&str>,
    ) -> StoreResult<HashMap<String, StageTotal>> {
        let (_, stage) = pipeline::property_names(&ot.name);
        let sql = format!(
            "SELECT {}, {}, archived FROM records WHERE account_id = $1 AND object_type = $2 AND {} IS NOT NULL",
            self.value_of(3),
            self.value_of(4),
            self.value_of(3),
        );
        let mut out: HashMap<String, StageTotal> = HashMap::new();
        let mut rows = sqlx::query_as::<_, (Option<String>, Option<String>, i64)>(&sql)
            .bind(account)
            .bind(&ot.type_id)
            .bind(stage)
            // A property name no record has when nothing is summed.
            .bind(sum_of.unwrap_or("-"))
            .fetch(&self.pool);
        while let Some((s, v, archived)) = rows.try_next().await? {
            let Some(s) = s else { continue };
            let t = out.entry(s).or_default();
            if archived != 0 {
                t.binned += 1;
            } else {
                t.live += 1;
                if let Some(x) = v.and_then(|v| v.trim().parse::<f64>().ok()) {
                    if x.is_finite() {
                        t.sum += x;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The live records in each of `stages`, most recently changed first: at most `cap` per
    /// stage, and `more_cap` in the stage `more`.
    pub async fn stage_records(
        &self,
        account: i64,
        ot: &ObjectType,
        stages: &[String],
        cap: usize,
        more: Option<&str>,
        more_cap: usize,
    ) -> StoreResult<HashMap<String, Vec<Record>>> {
        let mut out: HashMap<String, Vec<Record>> = HashMap::new();
        if stages.is_empty() {
            return Ok(out);
        }
        let (_, stage) = pipeline::property_names(&ot.name);
        let list = crate::records::in_list(7, stages.len());
        let sql = format!(
            "SELECT {RECORD_COLS}, st FROM (SELECT {RECORD_COLS}, {v} AS st, ROW_NUMBER() OVER (PARTITION BY {v} ORDER BY updated_at DESC, id DESC) AS rn \
             FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND {v} IN ({list})) ranked \
             WHERE rn <= CASE WHEN st = $4 THEN $5 ELSE $6 END ORDER BY rn",
            v = self.value_of(3),
        );
        let mut q =
            sqlx::query_as::<_, (i64, String, String, i64, i64, i64, Option<i64>, String)>(&sql)
                .bind(account)
                .bind(&ot.type_id)
                .bind(stage)
                .bind(more.unwrap_or(""))
                .bind(more_cap as i64)
                .bind(cap as i64);
        for s in stages {
            q = q.bind(s);
        }
        for (id, ty, props, created, updated, archived, archived_at, st) in
            q.fetch_all(&self.pool).await?
        {
            let row: RecordRow = (id, ty, props, created, updated, archived, archived_at);
            out.entry(st).or_default().push(record_from(row)?);
        }
        Ok(out)
    }
}
