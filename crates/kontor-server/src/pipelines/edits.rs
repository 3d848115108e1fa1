//! The changes to an object type's pipelines that the API and the console's settings page
//! make: each is one `Store::edit_pipelines` (so the rules of `kontor_domain::pipeline::check`
//! and the store's "what goes away must be empty" apply alike) followed by its audit entry,
//! which names whoever made it (an API token, or the signed-in user).

use kontor_domain::pipeline::{Pipeline, Stage};
use kontor_domain::time::now_ms;
use kontor_store::{NewIds, ObjectType, Store, StoreError, StoreResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Whether an object type has pipelines: deals, tickets and custom objects do.
pub fn has_pipelines(ot: &ObjectType) -> bool {
    ot.name == "deals" || ot.name == "tickets" || ot.is_custom()
}

pub fn no_pipelines_message(ot: &ObjectType) -> String {
    format!(
        "{} have no pipelines; deals, tickets and custom objects do",
        ot.name
    )
}

/// A stage as a change gives it; what is left out keeps its value (or, for a new stage, gets
/// an empty label, the next display order and no metadata).
#[derive(Debug, Clone, Default)]
pub struct StageInput {
    /// On a replaced pipeline, the stage to keep.
    pub id: Option<String>,
    pub label: Option<String>,
    pub display_order: Option<i64>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Who changes the pipelines of which object type.
pub struct Editor<'a> {
    pub store: &'a Store,
    pub account: i64,
    pub ot: &'a ObjectType,
    /// The signed-in user, for the console.
    pub user_id: Option<i64>,
    /// As the audit log names them: `token:<name>` or the user's e-mail.
    pub actor: String,
}

fn pipeline_missing(id: &str) -> StoreError {
    StoreError::not_found(format!("pipeline {id} does not exist"))
}

fn stage_missing(pipeline: &str, stage: &str) -> StoreError {
    StoreError::not_found(format!(
        "stage {stage} does not exist in pipeline {pipeline}"
    ))
}

fn find_mut<'p>(all: &'p mut [Pipeline], id: &str) -> StoreResult<&'p mut Pipeline> {
    all.iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| pipeline_missing(id))
}

fn stored(all: &[Pipeline], id: &str) -> StoreResult<Pipeline> {
    all.iter()
        .find(|p| p.id == id)
        .cloned()
        .ok_or_else(|| pipeline_missing(id))
}

fn stored_stage(all: &[Pipeline], pipeline: &str, stage: &str) -> StoreResult<Stage> {
    stored(all, pipeline)?
        .stage(stage)
        .cloned()
        .ok_or_else(|| stage_missing(pipeline, stage))
}

fn new_stage(input: &StageInput, order: i64, ids: &mut NewIds, now: i64) -> Stage {
    Stage {
        id: ids.take(),
        label: input.label.clone().unwrap_or_default(),
        display_order: input.display_order.unwrap_or(order),
        metadata: input.metadata.clone().unwrap_or_default(),
        created_at: now,
        updated_at: now,
    }
}

/// A pipeline's label and display order, where given.
fn patch(p: &mut Pipeline, label: Option<String>, display_order: Option<i64>, now: i64) {
    if let Some(l) = label {
        p.label = l;
    }
    if let Some(o) = display_order {
        p.display_order = o;
    }
    p.updated_at = now;
}

/// Moves the item at `i` one place up or down and numbers the display orders 0, 1, …;
/// `false` when it is already first or last.
fn shift<T>(items: &mut [T], i: usize, up: bool, order: impl Fn(&mut T) -> &mut i64) -> bool {
    let j = if up {
        match i.checked_sub(1) {
            Some(j) => j,
            None => return false,
        }
    } else if i + 1 < items.len() {
        i + 1
    } else {
        return false;
    };
    items.swap(i, j);
    for (n, item) in items.iter_mut().enumerate() {
        *order(item) = n as i64;
    }
    true
}

impl Editor<'_> {
    async fn audit(&self, action: &str, target: &str, details: Value) -> StoreResult<()> {
        self.store
            .audit(
                self.account,
                self.user_id,
                &self.actor,
                action,
                &format!("{}:{target}", self.ot.name),
                details,
            )
            .await
    }

    /// A new pipeline with its stages, after the others unless an order is given.
    pub async fn create(
        &self,
        label: String,
        display_order: Option<i64>,
        stages: &[StageInput],
    ) -> StoreResult<Pipeline> {
        let now = now_ms();
        let (id, all) = self
            .store
            .edit_pipelines(self.account, self.ot, stages.len() + 1, |all, ids| {
                let mut p = Pipeline {
                    id: ids.take(),
                    label,
                    display_order: display_order.unwrap_or(all.len() as i64),
                    stages: Vec::new(),
                    created_at: now,
                    updated_at: now,
                };
                for (i, s) in stages.iter().enumerate() {
                    p.stages.push(new_stage(s, i as i64, ids, now));
                }
                let id = p.id.clone();
                all.push(p);
                Ok(id)
            })
            .await?;
        let created = stored(&all, &id)?;
        self.audit("pipeline.create", &id, json!({"label": created.label}))
            .await?;
        Ok(created)
    }

    /// Replaces a pipeline's label, order and stages. A stage given with the `id` of one of
    /// the pipeline's stages, or else with one's label, keeps its id (and so its records);
    /// stages left out are archived, which records in them prevent.
    pub async fn replace(
        &self,
        id: &str,
        label: Option<String>,
        display_order: Option<i64>,
        stages: &[StageInput],
    ) -> StoreResult<Pipeline> {
        let now = now_ms();
        let (_, all) = self
            .store
            .edit_pipelines(self.account, self.ot, stages.len(), |all, ids| {
                let p = find_mut(all, id)?;
                let old = std::mem::take(&mut p.stages);
                for (i, s) in stages.iter().enumerate() {
                    let label = s.label.clone().unwrap_or_default();
                    let kept = old.iter().find(|o| match &s.id {
                        Some(sid) => &o.id == sid,
                        None => o.label.trim().eq_ignore_ascii_case(label.trim()),
                    });
                    let stage = match kept {
                        Some(o) => Stage {
                            label,
                            display_order: s.display_order.unwrap_or(i as i64),
                            metadata: s.metadata.clone().unwrap_or_else(|| o.metadata.clone()),
                            updated_at: now,
                            ..o.clone()
                        },
                        None => new_stage(s, i as i64, ids, now),
                    };
                    p.stages.push(stage);
                }
                patch(p, label, display_order, now);
                Ok(())
            })
            .await?;
        let replaced = stored(&all, id)?;
        self.audit(
            "pipeline.replace",
            id,
            json!({"label": replaced.label, "stages": replaced.stages.len()}),
        )
        .await?;
        Ok(replaced)
    }

    /// A pipeline's label and display order.
    pub async fn update(
        &self,
        id: &str,
        label: Option<String>,
        display_order: Option<i64>,
    ) -> StoreResult<Pipeline> {
        let now = now_ms();
        let (_, all) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let p = find_mut(all, id)?;
                patch(p, label, display_order, now);
                Ok(())
            })
            .await?;
        let changed = stored(&all, id)?;
        self.audit("pipeline.update", id, json!({"label": changed.label}))
            .await?;
        Ok(changed)
    }

    /// Moves a pipeline one place up or down the list; the pipelines are numbered 0, 1, … in
    /// their new order. Nothing changes (and nothing is audited) at either end.
    pub async fn move_pipeline(&self, id: &str, up: bool) -> StoreResult<Vec<Pipeline>> {
        let now = now_ms();
        let (moved, all) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let i = all
                    .iter()
                    .position(|p| p.id == id)
                    .ok_or_else(|| pipeline_missing(id))?;
                let moved = shift(all, i, up, |p| &mut p.display_order);
                if moved {
                    find_mut(all, id)?.updated_at = now;
                }
                Ok(moved)
            })
            .await?;
        if moved {
            let p = stored(&all, id)?;
            self.audit(
                "pipeline.update",
                id,
                json!({"label": p.label, "displayOrder": p.display_order}),
            )
            .await?;
        }
        Ok(all)
    }

    /// Archives a pipeline: refused while records are in it, for the pipeline records created
    /// without one go in, and for an object type's last pipeline.
    pub async fn archive(&self, id: &str) -> StoreResult<()> {
        if self.ot.defaults.iter().any(|(_, v)| v == id) {
            return Err(StoreError::validation(
                "VALIDATION_ERROR",
                format!(
                    "pipeline {id} is where {} created without a pipeline go: it cannot be archived",
                    self.ot.name
                ),
                Some("pipelineId".into()),
            ));
        }
        let (label, _) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let i = all
                    .iter()
                    .position(|p| p.id == id)
                    .ok_or_else(|| pipeline_missing(id))?;
                Ok(all.remove(i).label)
            })
            .await?;
        self.audit("pipeline.archive", id, json!({"label": label}))
            .await
    }

    /// A new stage at the end of a pipeline, unless an order is given.
    pub async fn create_stage(&self, pipeline: &str, input: &StageInput) -> StoreResult<Stage> {
        let now = now_ms();
        let (sid, all) = self
            .store
            .edit_pipelines(self.account, self.ot, 1, |all, ids| {
                let p = find_mut(all, pipeline)?;
                let s = new_stage(input, p.stages.len() as i64, ids, now);
                let sid = s.id.clone();
                p.stages.push(s);
                p.updated_at = now;
                Ok(sid)
            })
            .await?;
        let created = stored_stage(&all, pipeline, &sid)?;
        self.audit(
            "pipeline.stage.create",
            &format!("{pipeline}/{sid}"),
            json!({"label": created.label}),
        )
        .await?;
        Ok(created)
    }

    /// A stage's label, display order and metadata (replaced, or merged into what it has).
    pub async fn change_stage(
        &self,
        pipeline: &str,
        stage: &str,
        input: &StageInput,
        replace_metadata: bool,
    ) -> StoreResult<Stage> {
        let now = now_ms();
        let (_, all) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let p = find_mut(all, pipeline)?;
                let s = p
                    .stages
                    .iter_mut()
                    .find(|s| s.id == stage)
                    .ok_or_else(|| stage_missing(pipeline, stage))?;
                if let Some(l) = &input.label {
                    s.label = l.clone();
                }
                if let Some(o) = input.display_order {
                    s.display_order = o;
                }
                if let Some(m) = &input.metadata {
                    if replace_metadata {
                        s.metadata = m.clone();
                    } else {
                        s.metadata.extend(m.clone());
                    }
                }
                s.updated_at = now;
                p.updated_at = now;
                Ok(())
            })
            .await?;
        let changed = stored_stage(&all, pipeline, stage)?;
        self.audit(
            "pipeline.stage.update",
            &format!("{pipeline}/{stage}"),
            json!({"label": changed.label}),
        )
        .await?;
        Ok(changed)
    }

    /// Moves a stage one place up or down its pipeline; the stages are numbered 0, 1, … in
    /// their new order. Nothing changes (and nothing is audited) at either end.
    pub async fn move_stage(&self, pipeline: &str, stage: &str, up: bool) -> StoreResult<()> {
        let now = now_ms();
        let (moved, all) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let p = find_mut(all, pipeline)?;
                let i = p
                    .stages
                    .iter()
                    .position(|s| s.id == stage)
                    .ok_or_else(|| stage_missing(pipeline, stage))?;
                let moved = shift(&mut p.stages, i, up, |s| &mut s.display_order);
                if moved {
                    p.updated_at = now;
                    if let Some(s) = p.stages.iter_mut().find(|s| s.id == stage) {
                        s.updated_at = now;
                    }
                }
                Ok(moved)
            })
            .await?;
        if moved {
            let s = stored_stage(&all, pipeline, stage)?;
            self.audit(
                "pipeline.stage.update",
                &format!("{pipeline}/{stage}"),
                json!({"label": s.label, "displayOrder": s.display_order}),
            )
            .await?;
        }
        Ok(())
    }

    /// Archives a stage: refused while records are in it, and for a pipeline's last stage.
    pub async fn archive_stage(&self, pipeline: &str, stage: &str) -> StoreResult<()> {
        let (label, _) = self
            .store
            .edit_pipelines(self.account, self.ot, 0, |all, _| {
                let p = find_mut(all, pipeline)?;
                let i = p
                    .stages
                    .iter()
                    .position(|s| s.id == stage)
                    .ok_or_else(|| stage_missing(pipeline, stage))?;
                Ok(p.stages.remove(i).label)
            })
            .await?;
        self.audit(
            "pipeline.stage.archive",
            &format!("{pipeline}/{stage}"),
            json!({"label": label}),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::shift;

    #[test]
    fn shifting_renumbers_and_stops_at_the_ends() {
        let mut v = vec![(5, "a"), (7, "b"), (9, "c")];
        assert!(shift(&mut v, 2, true, |x| &mut x.0));
        assert_eq!(v, vec![(0, "a"), (1, "c"), (2, "b")]);
        assert!(!shift(&mut v, 0, true, |x| &mut x.0));
        assert!(!shift(&mut v, 2, false, |x| &mut x.0));
        assert!(shift(&mut v, 0, false, |x| &mut x.0));
        assert_eq!(v, vec![(0, "c"), (1, "a"), (2, "b")]);
    }
}
