//! Pipelines and their stages.
//!
//! A record's pipeline and stage are two enumeration properties (a deal's `pipeline` and
//! `dealstage`; a ticket's and a custom object's `hs_pipeline` and `hs_pipeline_stage`). A
//! pipeline is an option of the first; a stage is an option of the second, tagged with the
//! pipeline it belongs to and carrying its metadata. So the properties API, a record's
//! allowed values, backups and region moves all see the pipelines without a table of their
//! own, and this module is the one place that reads and writes them.

use crate::property::{PropertyDef, PropertyOption};
use std::collections::{BTreeMap, HashSet};

/// The pipeline and stage property names of an object type (by its API name).
pub fn property_names(object_type: &str) -> (&'static str, &'static str) {
    if object_type == "deals" {
        ("pipeline", "dealstage")
    } else {
        ("hs_pipeline", "hs_pipeline_stage")
    }
}

/// Whether a property (of the object type with this type id) holds pipelines or stages, whose
/// options only the pipelines API changes.
pub fn is_pipeline_property(type_id: &str, name: &str) -> bool {
    let (p, s) = property_names(if type_id == "0-3" { "deals" } else { "" });
    (type_id == "0-3" || type_id == "0-5" || type_id.starts_with("2-")) && (name == p || name == s)
}

/// Whether the object's stages carry a probability (deals) or an open/closed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deals,
    Other,
}

impl Kind {
    pub fn of(object_type: &str) -> Self {
        if object_type == "deals" {
            Kind::Deals
        } else {
            Kind::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub id: String,
    pub label: String,
    pub display_order: i64,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: String,
    pub label: String,
    pub display_order: i64,
    /// In display order.
    pub stages: Vec<Stage>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Pipeline {
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

/// A deal stage's probability of closing, for the stages every account starts with.
const PROBABILITIES: &[(&str, &str)] = &[
    ("appointmentscheduled", "0.2"),
    ("qualifiedtobuy", "0.4"),
    ("presentationscheduled", "0.6"),
    ("decisionmakerboughtin", "0.8"),
    ("contractsent", "0.9"),
    ("closedwon", "1.0"),
    ("closedlost", "0.0"),
];

/// The metadata a stage shows: what was stored, completed as HubSpot completes it. A deal
/// stage is closed when its probability is 0 or 1; a ticket stage when its state is CLOSED.
pub fn metadata(
    kind: Kind,
    id: &str,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m = stored.clone();
    match kind {
        Kind::Deals => {
            let p = m.entry("probability".into()).or_insert_with(|| {
                PROBABILITIES
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map_or("0.5", |(_, p)| p)
                    .to_string()
            });
            let closed = matches!(p.parse::<f64>(), Ok(x) if x == 0.0 || x == 1.0);
            m.entry("isClosed".into())
                .or_insert_with(|| closed.to_string());
        }
        Kind::Other => {
            // Of the stages tickets start with, "4" (Closed) is the closed one.
            let state = m
                .entry("ticketState".into())
                .or_insert_with(|| if id == "4" { "CLOSED" } else { "OPEN" }.into())
                .clone();
            m.entry("isClosed".into())
                .or_insert_with(|| (state == "CLOSED").to_string());
        }
    }
    m
}

/// The pipelines held by an object type's two properties, in display order.
pub fn read(kind: Kind, pipeline: &PropertyDef, stage: Option<&PropertyDef>) -> Vec<Pipeline> {
    let first = pipeline.options.first().map(|o| o.value.clone());
    let mut out: Vec<Pipeline> = pipeline
        .options
        .iter()
        .map(|o| Pipeline {
            id: o.value.clone(),
            label: o.label.clone(),
            display_order: o.display_order,
            stages: Vec::new(),
            created_at: o.created_at.unwrap_or(pipeline.created_at),
            updated_at: o.updated_at.unwrap_or(pipeline.updated_at),
        })
        .collect();
    if let Some(stage) = stage {
        for o in &stage.options {
            let owner = o.pipeline.clone().or_else(|| first.clone());
            if let Some(p) = out.iter_mut().find(|p| Some(&p.id) == owner.as_ref()) {
                p.stages.push(Stage {
                    id: o.value.clone(),
                    label: o.label.clone(),
                    display_order: o.display_order,
                    metadata: metadata(kind, &o.value, &o.metadata),
                    created_at: o.created_at.unwrap_or(stage.created_at),
                    updated_at: o.updated_at.unwrap_or(stage.updated_at),
                });
            }
        }
    }
    for p in &mut out {
        p.stages.sort_by_key(|s| s.display_order);
    }
    out.sort_by_key(|p| p.display_order);
    out
}

/// Completes every stage's metadata (see [`metadata`]) and puts pipelines and stages in
/// display order, as [`read`] gives them.
pub fn complete(kind: Kind, pipelines: &mut [Pipeline]) {
    for p in pipelines.iter_mut() {
        for s in &mut p.stages {
            s.metadata = metadata(kind, &s.id, &s.metadata);
        }
        p.stages.sort_by_key(|s| s.display_order);
    }
    pipelines.sort_by_key(|p| p.display_order);
}

/// Writes pipelines back as the options of the two properties.
pub fn write(pipelines: &[Pipeline], pipeline: &mut PropertyDef, stage: &mut PropertyDef) {
    pipeline.options = pipelines
        .iter()
        .map(|p| PropertyOption {
            label: p.label.clone(),
            value: p.id.clone(),
            display_order: p.display_order,
            created_at: Some(p.created_at),
            updated_at: Some(p.updated_at),
            ..Default::default()
        })
        .collect();
    stage.options = pipelines
        .iter()
        .flat_map(|p| {
            p.stages.iter().map(|s| PropertyOption {
                label: s.label.clone(),
                value: s.id.clone(),
                display_order: s.display_order,
                pipeline: Some(p.id.clone()),
                metadata: s.metadata.clone(),
                created_at: Some(s.created_at),
                updated_at: Some(s.updated_at),
                ..Default::default()
            })
        })
        .collect();
}

/// The pipeline a stage belongs to.
pub fn pipeline_of<'a>(pipelines: &'a [Pipeline], stage: &str) -> Option<&'a Pipeline> {
    pipelines.iter().find(|p| p.stage(stage).is_some())
}

/// A rule of pipelines broken: the message and the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub field: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        field: field.into(),
    }
}

/// Checks the rules every set of pipelines keeps: at least one pipeline; labels present and
/// unique among pipelines and among one pipeline's stages; each pipeline has a stage; stage
/// ids unique across the object type; a deal stage's probability a number from 0 to 1 and a
/// ticket state OPEN or CLOSED.
pub fn check(kind: Kind, pipelines: &[Pipeline]) -> Result<(), Invalid> {
    if pipelines.is_empty() {
        return Err(invalid(
            "pipelineId",
            "an object type keeps at least one pipeline",
        ));
    }
    let mut labels = HashSet::new();
    let mut stage_ids = HashSet::new();
    for p in pipelines {
        if p.label.trim().is_empty() {
            return Err(invalid("label", "a pipeline needs a label"));
        }
        if !labels.insert(p.label.trim().to_lowercase()) {
            return Err(invalid(
                "label",
                format!("a pipeline labelled {:?} already exists", p.label),
            ));
        }
        if p.stages.is_empty() {
            return Err(invalid("stages", "a pipeline needs at least one stage"));
        }
        let mut stage_labels = HashSet::new();
        for (i, s) in p.stages.iter().enumerate() {
            if s.label.trim().is_empty() {
                return Err(invalid(
                    format!("stages[{i}].label"),
                    "a stage needs a label",
                ));
            }
            if !stage_labels.insert(s.label.trim().to_lowercase()) {
                return Err(invalid(
                    format!("stages[{i}].label"),
                    format!(
                        "pipeline {:?} already has a stage labelled {:?}",
                        p.label, s.label
                    ),
                ));
            }
            if !stage_ids.insert(s.id.as_str()) {
                return Err(invalid(
                    format!("stages[{i}]"),
                    format!("stage id {:?} is used twice", s.id),
                ));
            }
            match kind {
                Kind::Deals => {
                    let ok = s
                        .metadata
                        .get("probability")
                        .and_then(|x| x.parse::<f64>().ok())
                        .is_some_and(|x| (0.0..=1.0).contains(&x));
                    if !ok {
                        return Err(invalid(
                            format!("stages[{i}].metadata.probability"),
                            format!(
                                "deal stage {:?} needs metadata.probability, a number from 0.0 to 1.0",
                                s.label
                            ),
                        ));
                    }
                }
                Kind::Other => {
                    if let Some(state) = s.metadata.get("ticketState") {
                        if state != "OPEN" && state != "CLOSED" {
                            return Err(invalid(
                                format!("stages[{i}].metadata.ticketState"),
                                format!("ticketState is OPEN or CLOSED, not {state:?}"),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The calculated properties that say when a record entered and left each stage and how long
/// it spent there, as HubSpot names them.
pub const DATE_ENTERED: &str = "hs_date_entered_";
pub const DATE_EXITED: &str = "hs_date_exited_";
pub const TIME_IN: &str = "hs_time_in_";

/// For a calculated stage property's name: which of the three it is, and the stage.
pub fn stage_property(name: &str) -> Option<(&'static str, &str)> {
    [DATE_ENTERED, DATE_EXITED, TIME_IN]
        .into_iter()
        .find_map(|prefix| name.strip_prefix(prefix).map(|stage| (prefix, stage)))
        .filter(|(_, stage)| !stage.is_empty())
}

/// The calculated stage properties of an object type's pipelines, three for every stage, as
/// the properties API lists them.
pub fn stage_time_properties(pipelines: &[Pipeline], group: &str) -> Vec<PropertyDef> {
    use crate::property::PropertyType;
    let mut out = Vec::new();
    for p in pipelines {
        for s in &p.stages {
            let named = format!("\"{}\" ({})", s.label, p.label);
            for (prefix, label, kind) in [
                (DATE_ENTERED, "Date entered", PropertyType::Datetime),
                (DATE_EXITED, "Date exited", PropertyType::Datetime),
                (TIME_IN, "Cumulative time in", PropertyType::Number),
            ] {
                let mut d = PropertyDef::new(
                    &format!("{prefix}{}", s.id),
                    &format!("{label} {named}"),
                    kind,
                    group,
                );
                d.calculated = true;
                d.read_only_value = true;
                d.hubspot_defined = true;
                d.description = if prefix == TIME_IN {
                    "Milliseconds the record has spent in this stage, over every stay".into()
                } else {
                    "Calculated from the record's history".into()
                };
                d.created_at = s.created_at;
                d.updated_at = s.updated_at;
                out.push(d);
            }
        }
    }
    out
}

/// When a record entered and left one stage, and how long it spent there in all, from the
/// history of its stage property (oldest first: each value with the time it was set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageTimes {
    /// The last time the record entered the stage.
    pub entered: Option<i64>,
    /// The last time it left the stage (absent while it is in the stage and was never in it
    /// before).
    pub exited: Option<i64>,
    /// Milliseconds spent in the stage in all, up to `now` while it is still there.
    pub time_in: Option<i64>,
}

pub fn stage_times(history: &[(Option<&str>, i64)], stage: &str, now: i64) -> StageTimes {
    let mut t = StageTimes::default();
    let mut since: Option<i64> = None;
    let mut total = 0i64;
    let mut seen = false;
    for (value, at) in history {
        let here = *value == Some(stage);
        match (since, here) {
            (None, true) => {
                since = Some(*at);
                t.entered = Some(*at);
                seen = true;
            }
            (Some(from), false) => {
                total += at - from;
                t.exited = Some(*at);
                since = None;
            }
            _ => {}
        }
    }
    if let Some(from) = since {
        total += (now - from).max(0);
    }
    if seen {
        t.time_in = Some(total);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_in_a_stage_adds_up_every_stay() {
        let h = [
            (Some("a"), 100),
            (Some("b"), 150),
            (Some("a"), 200),
            (Some("c"), 260),
        ];
        let t = stage_times(&h, "a", 1000);
        assert_eq!(t.entered, Some(200));
        assert_eq!(t.exited, Some(260));
        assert_eq!(t.time_in, Some(50 + 60));
        let c = stage_times(&h, "c", 1000);
        assert_eq!(
            (c.entered, c.exited, c.time_in),
            (Some(260), None, Some(740))
        );
        assert_eq!(stage_times(&h, "z", 1000), StageTimes::default());
    }

    #[test]
    fn old_stage_options_belong_to_the_first_pipeline_and_keep_their_metadata() {
        use crate::property::PropertyType;
        let p = PropertyDef::new("pipeline", "Pipeline", PropertyType::Enumeration, "g")
            .with_options(&[("default", "Sales")]);
        let s = PropertyDef::new("dealstage", "Stage", PropertyType::Enumeration, "g")
            .with_options(&[("closedwon", "Won"), ("qualifiedtobuy", "Qualified")]);
        let read = read(Kind::Deals, &p, Some(&s));
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].stages.len(), 2);
        assert_eq!(read[0].stages[0].metadata["probability"], "1.0");
        assert_eq!(read[0].stages[0].metadata["isClosed"], "true");
        assert_eq!(read[0].stages[1].metadata["isClosed"], "false");
        assert!(check(Kind::Deals, &read).is_ok());
        let (mut p2, mut s2) = (p.clone(), s.clone());
        write(&read, &mut p2, &mut s2);
        assert_eq!(super::read(Kind::Deals, &p2, Some(&s2)), read);
    }

    #[test]
    fn the_rules_refuse_what_hubspot_refuses() {
        let stage = |id: &str, label: &str, p: &str| Stage {
            id: id.into(),
            label: label.into(),
            display_order: 0,
            metadata: [("probability".to_string(), p.to_string())].into(),
            created_at: 0,
            updated_at: 0,
        };
        let pipe = |id: &str, label: &str, stages: Vec<Stage>| Pipeline {
            id: id.into(),
            label: label.into(),
            display_order: 0,
            stages,
            created_at: 0,
            updated_at: 0,
        };
        assert!(check(Kind::Deals, &[]).is_err());
        assert!(check(Kind::Deals, &[pipe("1", "A", vec![])]).is_err());
        assert!(check(Kind::Deals, &[pipe("1", "A", vec![stage("s", "S", "1.5")])]).is_err());
        let two = [
            pipe("1", "A", vec![stage("s", "S", "0.5")]),
            pipe("2", "a", vec![stage("t", "T", "0.5")]),
        ];
        assert_eq!(check(Kind::Deals, &two).unwrap_err().field, "label");
        let dup = [
            pipe("1", "A", vec![stage("s", "S", "0.5")]),
            pipe("2", "B", vec![stage("s", "T", "0.5")]),
        ];
        assert!(check(Kind::Deals, &dup).is_err());
    }
}
