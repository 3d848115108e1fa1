//! Creating, editing and deleting records from the console. Values are checked field by
//! field with the same rules as the API, so each message sits next to its field and the
//! user's input is kept.

use super::{Console, PageError};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::value;
use kontor_domain::{ChangeSource, PropertyDef, PropertyType};
use kontor_store::{Actor, CreateInput, ObjectType, Owner, Record, StoreError, UpdateInput};
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

type Fields = Vec<(String, String)>;

fn actor(c: &Console) -> Actor {
    Actor {
        source: ChangeSource::Ui,
        source_id: Some(c.session.user.email.clone()),
        user_id: Some(c.session.user.id),
    }
}

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    c.store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)
}

fn editable(defs: &[PropertyDef]) -> Vec<&PropertyDef> {
    defs.iter()
        .filter(|d| !d.read_only_value && !d.hidden)
        .collect()
}

/// A stored value as an `<input>` shows it (datetimes in the `datetime-local` form, UTC).
fn input_value(d: &PropertyDef, v: &str) -> String {
    match d.kind {
        PropertyType::Datetime => v.get(..16).unwrap_or(v).to_string(),
        _ => v.to_string(),
    }
}

fn field(
    d: &PropertyDef,
    value: &str,
    error: Option<&String>,
    owners: &[Owner],
    required: bool,
) -> Markup {
    let id = format!("f-{}", d.name);
    let err_id = format!("{id}-error");
    let described = error.map(|_| err_id.as_str());
    html! {
        div.field {
            label for=(id) { (d.label) @if required { " *" } @if d.sensitivity.is_sensitive() { " " span.muted { "(sensitive)" } } }
            @match (d.kind, d.name.as_str()) {
                (_, "hubspot_owner_id") => {
                    select id=(id) name=(d.name) aria-describedby=[described] {
                        option value="" { "—" }
                        @for o in owners {
                            @let v = o.id.to_string();
                            option value=(v) selected[v == value] { (o.first_name) " " (o.last_name) " (" (o.email) ")" }
                        }
                    }
                }
                (PropertyType::Enumeration | PropertyType::Bool, _) => {
                    select id=(id) name=(d.name) aria-describedby=[described] {
                        option value="" { "—" }
                        @for o in d.options.iter().filter(|o| !o.hidden) {
                            option value=(o.value) selected[o.value == value] { (o.label) }
                        }
                    }
                }
                (PropertyType::Date, _) => { input id=(id) type="date" name=(d.name) value=(value) aria-describedby=[described]; }
                (PropertyType::Datetime, _) => { input id=(id) type="datetime-local" name=(d.name) value=(value) aria-describedby=[described]; }
                (PropertyType::Number, _) => { input id=(id) type="text" inputmode="decimal" name=(d.name) value=(value) aria-describedby=[described]; }
                _ if d.field_type == "textarea" => { textarea id=(id) name=(d.name) rows="3" aria-describedby=[described] { (value) } }
                _ => { input id=(id) type=(if d.name == "email" { "email" } else { "text" }) name=(d.name) value=(value) required[required] aria-describedby=[described]; }
            }
            @if let Some(e) = error { p.error id=(err_id) role="alert" { (e) } }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    c: &Console,
    ot: &ObjectType,
    defs: &[PropertyDef],
    owners: &[Owner],
    record: Option<&Record>,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    general: Option<&str>,
) -> Markup {
    let (title, action) = match record {
        Some(r) => (
            format!("Edit {} {}", ot.label_singular.to_lowercase(), r.id),
            format!("/app/objects/{}/{}/edit", ot.name, r.id),
        ),
        None => (
            format!("Create {}", ot.label_singular.to_lowercase()),
            format!("/app/objects/{}/new", ot.name),
        ),
    };
    c.page(
        &title,
        &format!("/app/objects/{}", ot.name),
        html! {
            h1 { (title) }
            @if let Some(g) = general { p.flash.warn role="alert" { (g) } }
            form.card method="post" action=(action) novalidate {
                input type="hidden" name="_csrf" value=(c.session.csrf);
                @for d in editable(defs) {
                    (field(d, values.get(&d.name).map(String::as_str).unwrap_or(""), errors.get(&d.name), owners, ot.required.contains(&d.name)))
                }
                p {
                    button type="submit" { "Save" } " "
                    a.button.secondary href=(match record { Some(r) => format!("/app/objects/{}/{}", ot.name, r.id), None => format!("/app/objects/{}", ot.name) }) { "Cancel" }
                }
            }
        },
    )
}

async fn context(
    c: &Console,
    name: &str,
) -> Result<(ObjectType, Vec<PropertyDef>, Vec<Owner>), PageError> {
    let ot = object_type(c, name).await?;
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let owners = c.store.owners(c.id(), false, None, 0, 500).await?;
    Ok((ot, defs, owners))
}

pub async fn new_page(c: Console, Path(name): Path<String>) -> Result<Markup, PageError> {
    let (ot, defs, owners) = context(&c, &name).await?;
    Ok(form_page(
        &c,
        &ot,
        &defs,
        &owners,
        None,
        &BTreeMap::new(),
        &BTreeMap::new(),
        None,
    ))
}

pub async fn edit_page(
    c: Console,
    Path((name, id)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    let (ot, defs, owners) = context(&c, &name).await?;
    let r = c
        .store
        .record(
            c.id(),
            &ot,
            id.parse().map_err(|_| PageError::not_found())?,
            false,
        )
        .await?
        .ok_or_else(PageError::not_found)?;
    let values = defs
        .iter()
        .filter_map(|d| {
            r.props
                .get(&d.name)
                .map(|v| (d.name.clone(), input_value(d, v)))
        })
        .collect();
    Ok(form_page(
        &c,
        &ot,
        &defs,
        &owners,
        Some(&r),
        &values,
        &BTreeMap::new(),
        None,
    ))
}

/// Reads the submitted fields into API-style properties, collecting a message per field.
fn read_fields(
    defs: &[PropertyDef],
    ot: &ObjectType,
    form: &Fields,
    creating: bool,
) -> (
    BTreeMap<String, String>,
    Map<String, Value>,
    BTreeMap<String, String>,
) {
    let mut values = BTreeMap::new();
    let mut props = Map::new();
    let mut errors = BTreeMap::new();
    for d in editable(defs) {
        let Some((_, raw)) = form.iter().find(|(k, _)| *k == d.name) else {
            continue;
        };
        let raw = raw.trim().to_string();
        values.insert(d.name.clone(), raw.clone());
        if raw.is_empty() {
            if ot.required.contains(&d.name) {
                errors.insert(d.name.clone(), format!("{} is required.", d.label));
            } else if !creating {
                props.insert(d.name.clone(), Value::String(String::new()));
            }
            continue;
        }
        // `datetime-local` sends minutes without seconds or zone; the console works in UTC.
        let wire = if d.kind == PropertyType::Datetime && raw.len() == 16 {
            format!("{raw}:00Z")
        } else {
            raw.clone()
        };
        match value::normalize_str(d, &wire) {
            Ok(_) => {
                props.insert(d.name.clone(), Value::String(wire));
            }
            // The API's message names the internal property; people read the label.
            Err(e) => {
                errors.insert(
                    d.name.clone(),
                    e.message
                        .replace(&format!(" for {}", d.name), &format!(" for {}", d.label)),
                );
            }
        }
    }
    (values, props, errors)
}

/// Puts a store refusal next to the field it names, or above the form.
fn place_error(
    e: StoreError,
    errors: &mut BTreeMap<String, String>,
) -> Result<Option<String>, PageError> {
    match e {
        StoreError::Conflict { message, .. } if message.starts_with("Contact already exists") => {
            errors.insert(
                "email".into(),
                format!("{message}. Each contact needs its own e-mail address."),
            );
            Ok(None)
        }
        StoreError::Validation {
            message,
            in_field: Some(f),
            ..
        } if f.starts_with("properties.") => {
            let name = f.trim_start_matches("properties.").to_string();
            let short = message
                .split("\"message\":\"")
                .nth(1)
                .and_then(|m| m.split("\",").next())
                .unwrap_or(&message)
                .replace("\\\"", "\"");
            errors.insert(name, short);
            Ok(None)
        }
        StoreError::Validation { message, .. } | StoreError::Conflict { message, .. } => {
            Ok(Some(message))
        }
        other => Err(other.into()),
    }
}

pub async fn create(
    c: Console,
    Path(name): Path<String>,
    Form(form): Form<Fields>,
) -> Result<Response, PageError> {
    let (ot, defs, owners) = context(&c, &name).await?;
    c.check_csrf(
        form.iter()
            .find(|(k, _)| k == "_csrf")
            .map_or("", |(_, v)| v),
    )?;
    let (values, props, mut errors) = read_fields(&defs, &ot, &form, true);
    if errors.is_empty() {
        match c
            .store
            .create_records(
                c.id(),
                &ot,
                vec![CreateInput {
                    properties: props,
                    associations: vec![],
                }],
                &actor(&c),
            )
            .await
        {
            Ok(r) => {
                return Ok(
                    Redirect::to(&format!("/app/objects/{}/{}", ot.name, r[0].id)).into_response(),
                )
            }
            Err(e) => {
                if let Some(general) = place_error(e, &mut errors)? {
                    return Ok((
                        StatusCode::BAD_REQUEST,
                        form_page(
                            &c,
                            &ot,
                            &defs,
                            &owners,
                            None,
                            &values,
                            &errors,
                            Some(&general),
                        ),
                    )
                        .into_response());
                }
            }
        }
    }
    Ok((
        StatusCode::BAD_REQUEST,
        form_page(
            &c,
            &ot,
            &defs,
            &owners,
            None,
            &values,
            &errors,
            Some("Some values need fixing."),
        ),
    )
        .into_response())
}

pub async fn update(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Result<Response, PageError> {
    let (ot, defs, owners) = context(&c, &name).await?;
    c.check_csrf(
        form.iter()
            .find(|(k, _)| k == "_csrf")
            .map_or("", |(_, v)| v),
    )?;
    let r = c
        .store
        .record(
            c.id(),
            &ot,
            id.parse().map_err(|_| PageError::not_found())?,
            false,
        )
        .await?
        .ok_or_else(PageError::not_found)?;
    let (values, props, mut errors) = read_fields(&defs, &ot, &form, false);
    if errors.is_empty() {
        match c
            .store
            .update_records(
                c.id(),
                &ot,
                vec![UpdateInput {
                    id: r.id,
                    properties: props,
                }],
                &actor(&c),
            )
            .await
        {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("/app/objects/{}/{}", ot.name, r.id)).into_response()
                )
            }
            Err(e) => {
                if let Some(general) = place_error(e, &mut errors)? {
                    return Ok((
                        StatusCode::BAD_REQUEST,
                        form_page(
                            &c,
                            &ot,
                            &defs,
                            &owners,
                            Some(&r),
                            &values,
                            &errors,
                            Some(&general),
                        ),
                    )
                        .into_response());
                }
            }
        }
    }
    Ok((
        StatusCode::BAD_REQUEST,
        form_page(
            &c,
            &ot,
            &defs,
            &owners,
            Some(&r),
            &values,
            &errors,
            Some("Some values need fixing."),
        ),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Moves a record to the recycle bin.
pub async fn delete(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    if c.store
        .archive_records(c.id(), &ot, &[id], &actor(&c))
        .await?
        .is_empty()
    {
        return Err(PageError::not_found());
    }
    Ok(Redirect::to(&format!(
        "/app/objects/{}?deleted={id}",
        ot.name
    )))
}

#[derive(serde::Deserialize)]
pub struct MergeForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    other: String,
}

/// Merges another record into this one (see `Store::merge_records`): this one keeps its id
/// and values, the other's fill its gaps, and the other's id leads here afterwards.
pub async fn merge(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<MergeForm>,
) -> Result<Redirect, PageError> {
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let other: i64 = f.other.trim().parse().map_err(|_| {
        PageError::from(kontor_store::StoreError::validation(
            "VALIDATION_ERROR",
            format!("{:?} is not a record ID", f.other.trim()),
            Some("other".into()),
        ))
    })?;
    c.store
        .merge_records(c.id(), &ot, id, other, &actor(&c))
        .await?;
    c.store
        .audit(
            c.id(),
            Some(c.session.user.id),
            &c.session.user.email,
            "record.merge",
            &format!("{}:{id}", ot.name),
            serde_json::json!({ "merged": other.to_string() }),
        )
        .await?;
    Ok(Redirect::to(&format!(
        "/app/objects/{}/{id}?merged={other}",
        ot.name
    )))
}
