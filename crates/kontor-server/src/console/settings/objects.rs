use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::Role;
use kontor_store::{SchemaInput, StoreError};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ObjectForm {
    name: String,
    singular: String,
    plural: String,
    primary_name: String,
    primary_label: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

async fn objects_view(
    c: &Console,
    form: &ObjectForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let schemas = c.store.custom_schemas(c.id(), false).await?;
    let mut with_pipelines = Vec::new();
    for ot in c.store.object_types(c.id()).await? {
        if crate::pipelines::has_pipelines(&ot) {
            let pipelines = c.store.pipelines(c.id(), &ot).await?;
            with_pipelines.push((ot, pipelines));
        }
    }
    Ok(c.page(
        "Objects",
        "/app/settings/objects",
        html! {
            h1 { "Objects" }
            (top)
            section.card aria-labelledby="pipelines" {
                h2 #pipelines { "Pipelines" }
                p.muted { "Deals, tickets and custom objects move through the stages of a pipeline, shown as columns of their board." }
                table {
                    thead { tr { th scope="col" { "Object" } th scope="col" { "Pipelines" } } }
                    tbody {
                        @for (ot, pipelines) in &with_pipelines {
                            tr {
                                td { a href=(format!("/app/settings/objects/{}/pipelines", ot.name)) { (ot.label_plural) " pipelines" } }
                                td {
                                    @if pipelines.is_empty() { span.muted { "None yet" } }
                                    @else { (pipelines.iter().map(|p| format!("{} ({} stages)", p.label, p.stages.len())).collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Custom objects" }
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Singular" } th scope="col" { "Plural" }
                    th scope="col" { "Display property" } th scope="col" { "Object type id" } th scope="col" { "Created" }
                } }
                tbody {
                    @for s in &schemas {
                        tr {
                            td { a href=(format!("/app/objects/{}", s.name)) { (s.name) } }
                            td { (s.label_singular) }
                            td { (s.label_plural) }
                            td { code { (s.primary_display_property.as_deref().unwrap_or("—")) } }
                            td { code { (s.object_type_id) } }
                            td { (when(s.created_at)) }
                        }
                    }
                }
            }
            @if schemas.is_empty() { p.muted { "No custom objects yet." } }
            section.card aria-labelledby="create-object" {
                h2 #create-object { "Create a custom object" }
                form method="post" action="/app/settings/objects" {
                    (csrf(c))
                    (input("name", "Name", "text", &form.name, Some("Used by the API and in addresses: letters, digits and underscores, starting with a letter."), true, errors))
                    (input("singular", "Label, singular", "text", &form.singular, Some("For example “Car”."), true, errors))
                    (input("plural", "Label, plural", "text", &form.plural, Some("For example “Cars”."), true, errors))
                    (input("primary_name", "Display property, internal name", "text", &form.primary_name, Some("The text property that names each record, such as car_name: lower-case letters, digits and underscores."), true, errors))
                    (input("primary_label", "Display property, label", "text", &form.primary_label, Some("For example “Car name”."), true, errors))
                    p { button type="submit" { "Create object" } }
                }
            }
        },
    ))
}

pub async fn objects(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    objects_view(&c, &ObjectForm::default(), &Errors::default(), notice(&q)).await
}

pub async fn create_object(c: Console, Form(f): Form<ObjectForm>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let mut errors = Errors::default();
    let mut status = StatusCode::BAD_REQUEST;
    for (id, value, message) in [
        ("name", &f.name, "Enter a name."),
        ("singular", &f.singular, "Enter the singular label."),
        ("plural", &f.plural, "Enter the plural label."),
        (
            "primary_name",
            &f.primary_name,
            "Enter the display property's internal name.",
        ),
        (
            "primary_label",
            &f.primary_label,
            "Enter the display property's label.",
        ),
    ] {
        if value.trim().is_empty() {
            errors.add(id, message);
        }
    }
    if errors.is_empty() {
        let primary = f.primary_name.trim();
        let input: SchemaInput = serde_json::from_value(json!({
            "name": f.name.trim(),
            "labels": {"singular": f.singular.trim(), "plural": f.plural.trim()},
            "primaryDisplayProperty": primary,
            "requiredProperties": [primary],
            "searchableProperties": [primary],
            "properties": [{"name": primary, "label": f.primary_label.trim(), "type": "string", "fieldType": "text"}],
        }))
        .map_err(StoreError::from)?;
        let fields = [
            ("name", "name"),
            ("labels.singular", "singular"),
            ("labels.plural", "plural"),
            ("labels", "singular"),
            ("properties[0].label", "primary_label"),
            ("properties[0]", "primary_name"),
            ("primaryDisplayProperty", "primary_name"),
            ("requiredProperties", "primary_name"),
            ("searchableProperties", "primary_name"),
        ];
        match c.store.create_schema(c.id(), input).await {
            Ok(s) => {
                log_action(
                    &c,
                    "schema.create",
                    &s.object_type_id,
                    json!({"name": s.name, "labels": {"singular": s.label_singular, "plural": s.label_plural}, "primaryDisplayProperty": primary}),
                )
                .await?;
                return Ok(Redirect::to("/app/settings/objects?done=object").into_response());
            }
            Err(e) => status = place_error(e, &fields, "name", &mut errors)?,
        }
    }
    Ok(reply(
        status,
        objects_view(&c, &f, &errors, html! {}).await?,
    ))
}

// ---- account ----
