//! What a write derives or checks beyond each property's own type: a record's stage belongs
//! to its pipeline (and a stage given alone brings its pipeline), and a line item's amount and
//! the values it takes from its product.

use crate::objects::ObjectType;
use crate::{Store, StoreError, StoreResult};
use kontor_domain::pipeline;
use kontor_domain::property::PropertyDef;
use std::collections::BTreeMap;

/// An object type's pipeline and stage property names and its pipelines (none for a type
/// without them), to keep a record's stage in its pipeline.
pub(crate) struct Stages<'a>(&'a str, &'a str, Vec<pipeline::Pipeline>);

impl<'a> Stages<'a> {
    pub(crate) fn of(ot: &ObjectType, defs: &[PropertyDef]) -> Stages<'static> {
        let (p, s) = pipeline::property_names(&ot.name);
        let find = |n: &str| defs.iter().find(|d| d.name == n);
        let pipelines = match find(p) {
            Some(pd) => pipeline::read(pipeline::Kind::of(&ot.name), pd, find(s)),
            None => Vec::new(),
        };
        Stages(p, s, pipelines)
    }

    /// Whether a write changes the pipeline or the stage.
    pub(crate) fn touched_by<V>(&self, changes: &BTreeMap<String, V>) -> bool {
        changes.contains_key(self.0) || changes.contains_key(self.1)
    }

    /// A record created with a stage and no pipeline goes in the stage's pipeline.
    pub(crate) fn fill_pipeline(&self, props: &mut BTreeMap<String, Option<String>>) {
        if props.get(self.0).is_some_and(|v| v.is_some()) {
            return;
        }
        if let Some(Some(stage)) = props.get(self.1) {
            if let Some(p) = pipeline::pipeline_of(&self.2, stage) {
                props.insert(self.0.to_string(), Some(p.id.clone()));
            }
        }
    }
}

/// Line items' type id.
pub(super) const LINE_ITEMS: &str = "0-8";

/// A line item's amount: unit price × quantity (a quantity of 1 when none is given), rounded
/// to six decimals; none without a price.
pub(super) fn line_item_amount(props: &BTreeMap<String, String>) -> Option<String> {
    let price: f64 = props.get("price")?.parse().ok()?;
    let quantity: f64 = props
        .get("quantity")
        .map_or(Some(1.0), |q| q.parse().ok())?;
    let amount = (price * quantity * 1e6).round() / 1e6;
    Some(if amount.fract() == 0.0 && amount.abs() < 1e15 {
        format!("{}", amount as i64)
    } else {
        format!("{amount}")
    })
}

/// Refuses a stage that is not one of the record's pipeline's stages.
pub(super) fn check_stage(stages: &Stages, props: &BTreeMap<String, String>) -> StoreResult<()> {
    let Stages(p, s, pipelines) = stages;
    if pipelines.is_empty() {
        return Ok(());
    }
    let Some(stage) = props.get(*s) else {
        return Ok(());
    };
    let pipe = props.get(*p).map(String::as_str).unwrap_or_default();
    if pipeline::pipeline_of(pipelines, stage).is_some_and(|x| x.id == pipe) {
        return Ok(());
    }
    let message = format!("{stage} is not a valid stage of pipeline {pipe}");
    Err(StoreError::validation(
        "INVALID_OPTION",
        format!("Property values were not valid: [{{\"isValid\":false,\"message\":{},\"error\":\"INVALID_OPTION\",\"name\":\"{s}\"}}]", serde_json::to_string(&message)?),
        Some(format!("properties.{s}")),
    ))
}

impl Store {
    /// A line item created from a product (`hs_product_id`) takes the product's name, price,
    /// SKU and description where it gives none.
    pub(super) async fn fill_from_product(
        &self,
        account: i64,
        props: &mut BTreeMap<String, Option<String>>,
        path: &str,
    ) -> StoreResult<()> {
        let Some(Some(id)) = props.get("hs_product_id") else {
            return Ok(());
        };
        let product = match id.parse::<i64>() {
            Ok(pid) => {
                let products = self.object_type(account, "0-7").await?;
                match products {
                    Some(pot) => self.record(account, &pot, pid, false).await?,
                    None => None,
                }
            }
            Err(_) => None,
        };
        let Some(product) = product else {
            return Err(StoreError::validation(
                "INVALID_PROPERTY",
                format!("hs_product_id {id} is not a product of this account"),
                Some(format!("{path}properties.hs_product_id")),
            ));
        };
        for name in ["name", "price", "hs_sku", "description"] {
            if props.get(name).is_none_or(|v| v.is_none()) {
                if let Some(v) = product.props.get(name) {
                    props.insert(name.to_string(), Some(v.clone()));
                }
            }
        }
        Ok(())
    }
}
