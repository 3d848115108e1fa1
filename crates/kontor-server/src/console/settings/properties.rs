use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::{PropertyDef, PropertyOption, PropertyType, Role};
use kontor_store::{IndexStatus, ObjectType, OptionInput, PropertyInput};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PropertyForm {
    /// The object type, on the create form only.
    #[serde(rename = "type")]
    object_type: String,
    label: String,
    name: String,
    kind: String,
    group: String,
    description: String,
    options: String,
    sensitive: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: String,
}

impl PropertyForm {
    fn of(def: &PropertyDef) -> Self {
        Self {
            label: def.label.clone(),
            name: def.name.clone(),
            kind: def.kind.as_str().into(),
            group: def.group_name.clone(),
            description: def.description.clone(),
            options: options_text(&def.options),
            sensitive: def.sensitivity.is_sensitive().then(|| "on".into()),
            ..Self::default()
        }
    }
}

/// Store field names of a property input, mapped to the form's inputs.
const PROPERTY_FIELDS: [(&str, &str); 8] = [
    ("name", "name"),
    ("label", "label"),
    ("type", "kind"),
    ("fieldType", "kind"),
    ("groupName", "group"),
    ("options", "options"),
    ("dataSensitivity", "sensitive"),
    ("hasUniqueValue", "name"),
];

/// Options one per line: `Label`, or `Label | value` when the stored value differs.
fn options_text(options: &[PropertyOption]) -> String {
    options
        .iter()
        .map(|o| {
            if o.label == o.value {
                o.label.clone()
            } else {
                format!("{} | {}", o.label, o.value)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the options text, keeping what the form does not show (hidden, description) of
/// options that already exist.
fn parse_options(text: &str, existing: &[PropertyOption]) -> Vec<OptionInput> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (label, value) = match line.split_once('|') {
                Some((l, v)) => (l.trim(), v.trim()),
                None => (line, line),
            };
            let old = existing.iter().find(|o| o.value == value);
            OptionInput {
                label: label.to_string(),
                value: value.to_string(),
                hidden: old.is_some_and(|o| o.hidden),
                display_order: None,
                description: old.map(|o| o.description.clone()),
            }
        })
        .collect()
}

/// An internal name made from a label: `Favourite colour` → `favourite_colour`.
fn internal_name(label: &str) -> String {
    let mut name = String::new();
    for ch in label.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            name.push(ch.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_end_matches('_').to_string()
}

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    c.store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)
}

async fn group_choices(c: &Console, ot: &ObjectType) -> Result<Vec<(String, String)>, PageError> {
    Ok(c.store
        .property_groups(c.id(), &ot.type_id)
        .await?
        .into_iter()
        .map(|g| (g.name, g.label))
        .collect())
}

fn sensitive_checkbox(checked: bool, errors: &Errors) -> Markup {
    html! {
        p.check-row {
            input #sensitive type="checkbox" name="sensitive" value="on" checked[checked]
                aria-describedby=[described_by("sensitive", true, errors)];
            " "
            label.inline for="sensitive" { "This property holds sensitive data" }
        }
        p.muted.check-hint #sensitive-hint {
            "For example health, financial or identity-document details. The console marks sensitive properties on records and forms."
        }
        (error("sensitive", errors))
    }
}

fn sensitivity_cell(def: &PropertyDef) -> Markup {
    html! {
        @match def.sensitivity {
            kontor_domain::Sensitivity::NonSensitive => { span.muted { "—" } }
            kontor_domain::Sensitivity::Sensitive => { strong { "Sensitive" } }
            kontor_domain::Sensitivity::HighlySensitive => { strong { "Highly sensitive" } }
        }
    }
}

/// How far a build of the property's search index has come, or that it is ready.
fn index_state(index: &IndexStatus, ot: &ObjectType, property: &str) -> Markup {
    html! {
        @match index.build(&ot.type_id, property) {
            Some(b) => {
                "Building: " (b.done.min(b.total)) " of " (b.total) " records ("
                (b.done.min(b.total) * 100 / b.total.max(1)) " %). Until it ends, searches on this property check every record."
            }
            None if index.behind() > INDEX_LAG_SHOWN => {
                "Ready; catching up with " (index.behind()) " recent changes (searches stay exact meanwhile)."
            }
            None => "Ready",
        }
    }
}

/// Changes not yet indexed worth telling an admin about: a bulk import's worth.
const INDEX_LAG_SHOWN: i64 = 10_000;

async fn properties_view(
    c: &Console,
    ot: &ObjectType,
    form: &PropertyForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let types = c.store.object_types(c.id()).await?;
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let index = c.store.index_status(c.id()).await?;
    let building: Vec<&PropertyDef> = defs
        .iter()
        .filter(|d| index.build(&ot.type_id, &d.name).is_some())
        .collect();
    let groups = group_choices(c, ot).await?;
    let group_label = |name: &str| {
        groups
            .iter()
            .find(|(n, _)| n == name)
            .map_or(name.to_string(), |(_, l)| l.clone())
    };
    let kinds: Vec<(String, String)> = KINDS
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
    Ok(c.page(
        "Properties",
        "/app/settings/properties",
        html! {
            h1 { "Properties of " (ot.label_plural.to_lowercase()) }
            (top)
            form.toolbar method="get" action="/app/settings/properties" {
                label for="type" { "Object" }
                select #type name="type" {
                    @for t in &types { option value=(t.name) selected[t.name == ot.name] { (t.label_plural) } }
                }
                button.secondary type="submit" { "Show" }
            }
            @if !building.is_empty() {
                div.card #index-builds role="status" {
                    p { "The search index is being built for:" }
                    ul {
                        @for d in &building {
                            li { a href=(format!("/app/settings/properties/{}/{}", ot.name, d.name)) { (d.label) } ": " (index_state(&index, ot, &d.name)) }
                        }
                    }
                }
            }
            table {
                thead { tr {
                    th scope="col" { "Label" } th scope="col" { "Internal name" } th scope="col" { "Type" }
                    th scope="col" { "Group" } th scope="col" { "Sensitive" } th scope="col" { "Defined by" }
                } }
                tbody {
                    @for d in &defs {
                        tr id=(format!("property-{}", d.name)) {
                            td { a href=(format!("/app/settings/properties/{}/{}", ot.name, d.name)) { (d.label) } }
                            td { code { (d.name) } }
                            td { (d.kind.as_str()) " · " (d.field_type) }
                            td { (group_label(&d.group_name)) }
                            td { (sensitivity_cell(d)) }
                            td { @if d.hubspot_defined { "kontor" } @else { "This account" } }
                        }
                    }
                }
            }
            section.card aria-labelledby="create-property" {
                h2 #create-property { "Create a property" }
                form method="post" action="/app/settings/properties" {
                    (csrf(c))
                    input type="hidden" name="type" value=(ot.name);
                    (input("label", "Label", "text", &form.label, None, true, errors))
                    (input("name", "Internal name", "text", &form.name, Some("Lower-case letters, digits and underscores, used by the API. Leave empty to make it from the label."), false, errors))
                    (select("kind", "Type", &kinds, &form.kind, errors))
                    (select("group", "Group", &groups, &form.group, errors))
                    (textarea("description", "Description", &form.description, None, errors))
                    (textarea("options", "Options", &form.options, Some("For dropdown selects: one option per line. Write “Label | value” to store a value different from the label."), errors))
                    (sensitive_checkbox(form.sensitive.is_some(), errors))
                    p { button type="submit" { "Create property" } }
                }
            }
        },
    ))
}

pub async fn properties(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let ot = object_type(&c, q.first("type").unwrap_or("contacts")).await?;
    properties_view(
        &c,
        &ot,
        &PropertyForm::default(),
        &Errors::default(),
        notice(&q),
    )
    .await
}

pub async fn create_property(
    c: Console,
    Form(f): Form<PropertyForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &f.object_type).await?;
    let mut errors = Errors::default();
    let mut status = StatusCode::BAD_REQUEST;
    let label = f.label.trim();
    if label.is_empty() {
        errors.add("label", "Enter a label.");
    } else {
        let name = match f.name.trim() {
            "" => internal_name(label),
            n => n.to_string(),
        };
        let kind = PropertyType::parse(&f.kind);
        let input = PropertyInput {
            name: Some(name),
            label: Some(label.to_string()),
            kind: Some(f.kind.clone()),
            group_name: Some(f.group.clone()),
            description: Some(f.description.trim().to_string()),
            options: (kind == Some(PropertyType::Enumeration))
                .then(|| parse_options(&f.options, &[])),
            sensitive: Some(f.sensitive.is_some()),
            ..PropertyInput::default()
        };
        match c.store.create_property(c.id(), &ot.type_id, input).await {
            Ok(def) => {
                log_action(
                    &c,
                    "property.create",
                    &format!("property:{}/{}", ot.name, def.name),
                    json!({"label": def.label, "type": def.kind.as_str(), "sensitivity": def.sensitivity.as_str()}),
                )
                .await?;
                return Ok(Redirect::to(&format!(
                    "/app/settings/properties?type={}&done=created",
                    ot.name
                ))
                .into_response());
            }
            Err(e) => status = place_error(e, &PROPERTY_FIELDS, "name", &mut errors)?,
        }
    }
    Ok(reply(
        status,
        properties_view(&c, &ot, &f, &errors, html! {}).await?,
    ))
}

/// A live property of an object type of this account, or the not-found page.
async fn property(
    c: &Console,
    object_type_name: &str,
    name: &str,
) -> Result<(ObjectType, PropertyDef), PageError> {
    let ot = object_type(c, object_type_name).await?;
    let def = c
        .store
        .property(c.id(), &ot.type_id, name)
        .await?
        .filter(|d| !d.archived)
        .ok_or_else(PageError::not_found)?;
    Ok((ot, def))
}

async fn property_view(
    c: &Console,
    ot: &ObjectType,
    def: &PropertyDef,
    form: &PropertyForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let groups = group_choices(c, ot).await?;
    let index = c.store.index_status(c.id()).await?;
    let action = format!("/app/settings/properties/{}/{}", ot.name, def.name);
    Ok(c.page(
        &def.label,
        "/app/settings/properties",
        html! {
            p { a href=(format!("/app/settings/properties?type={}", ot.name)) { "← Properties of " (ot.label_plural.to_lowercase()) } }
            h1 { (def.label) }
            (top)
            section.card aria-labelledby="about" {
                h2 #about { "About this property" }
                dl.props {
                    dt { "Internal name" } dd { code { (def.name) } }
                    dt { "Object" } dd { (ot.label_plural) }
                    dt { "Type" } dd { (def.kind.as_str()) " · " (def.field_type) }
                    dt { "Sensitivity" } dd { (sensitivity_cell(def)) }
                    dt { "Defined by" } dd { @if def.hubspot_defined { "kontor" } @else { "This account" } }
                    dt { "Created" } dd { (when(def.created_at)) }
                    dt { "Search index" } dd #search-index { (index_state(&index, ot, &def.name)) }
                }
            }
            @if def.read_only_value {
                div.card { p { "kontor maintains this property's values; its definition cannot be changed." } }
            } @else {
                section.card aria-labelledby="edit" {
                    h2 #edit { "Edit" }
                    form method="post" action=(action) {
                        (csrf(c))
                        (input("label", "Label", "text", &form.label, None, true, errors))
                        (select("group", "Group", &groups, &form.group, errors))
                        (textarea("description", "Description", &form.description, None, errors))
                        @if def.kind == PropertyType::Enumeration {
                            (textarea("options", "Options", &form.options, Some("One option per line. Write “Label | value” to store a value different from the label."), errors))
                        }
                        (sensitive_checkbox(form.sensitive.is_some(), errors))
                        p { button type="submit" { "Save changes" } }
                    }
                }
            }
            @if !def.hubspot_defined {
                section.card aria-labelledby="archive" {
                    h2 #archive { "Archive" }
                    p #archive-hint { "Archived properties are no longer listed or shown on records." }
                    form method="post" action=(format!("{action}/archive")) {
                        (csrf(c))
                        button.danger type="submit" aria-describedby="archive-hint" { "Archive property" }
                    }
                }
            }
        },
    ))
}

pub async fn property_page(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    property_view(
        &c,
        &ot,
        &def,
        &PropertyForm::of(&def),
        &Errors::default(),
        notice(&q),
    )
    .await
}

/// What an update changed, as `{field: {from, to}}`.
fn property_changes(old: &PropertyDef, new: &PropertyDef) -> Map<String, Value> {
    let options = |d: &PropertyDef| {
        json!(d
            .options
            .iter()
            .map(|o| [&o.label, &o.value])
            .collect::<Vec<_>>())
    };
    let pairs = [
        ("label", json!(old.label), json!(new.label)),
        ("group", json!(old.group_name), json!(new.group_name)),
        (
            "description",
            json!(old.description),
            json!(new.description),
        ),
        ("options", options(old), options(new)),
        (
            "sensitivity",
            json!(old.sensitivity.as_str()),
            json!(new.sensitivity.as_str()),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| (field.to_string(), json!({"from": from, "to": to})))
        .collect()
}

pub async fn update_property(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    Form(f): Form<PropertyForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    if def.read_only_value {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Read-only property",
            "kontor maintains this property's values; its definition cannot be changed.",
        ));
    }
    let checked = f.sensitive.is_some();
    let input = PropertyInput {
        label: Some(f.label.trim().to_string()),
        group_name: Some(f.group.clone()),
        description: Some(f.description.trim().to_string()),
        options: (def.kind == PropertyType::Enumeration)
            .then(|| parse_options(&f.options, &def.options)),
        // A ticked box keeps a "highly sensitive" level rather than lowering it to "sensitive".
        sensitive: (checked != def.sensitivity.is_sensitive()).then_some(checked),
        ..PropertyInput::default()
    };
    match c
        .store
        .update_property(c.id(), &ot.type_id, &def.name, input)
        .await
    {
        Ok(new) => {
            let changes = property_changes(&def, &new);
            let done = if changes.is_empty() {
                "unchanged"
            } else {
                log_action(
                    &c,
                    "property.update",
                    &format!("property:{}/{}", ot.name, def.name),
                    Value::Object(changes),
                )
                .await?;
                "saved"
            };
            Ok(Redirect::to(&format!(
                "/app/settings/properties/{}/{}?done={done}",
                ot.name, def.name
            ))
            .into_response())
        }
        Err(e) => {
            let mut errors = Errors::default();
            let status = place_error(e, &PROPERTY_FIELDS, "label", &mut errors)?;
            Ok(reply(
                status,
                property_view(&c, &ot, &def, &f, &errors, html! {}).await?,
            ))
        }
    }
}

pub async fn archive_property(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    if def.hubspot_defined {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Built-in property",
            "Built-in properties cannot be archived.",
        ));
    }
    c.store
        .archive_property(c.id(), &ot.type_id, &def.name)
        .await?;
    log_action(
        &c,
        "property.archive",
        &format!("property:{}/{}", ot.name, def.name),
        json!({"label": def.label}),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/app/settings/properties?type={}&done=archived",
        ot.name
    )))
}

// ---- custom objects ----
