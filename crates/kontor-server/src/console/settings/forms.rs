//! Settings → Forms: the account's forms, what each asks, the address a website sends its
//! submissions to, and the latest submissions (admins).

use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::{PropertyDef, Role};
use kontor_store::forms::{FormField, FormInput};
use maud::{html, Markup};

/// The contact properties a form can fill.
async fn fillable(c: &Console) -> Result<Vec<PropertyDef>, PageError> {
    let ot = c
        .store
        .object_type(c.id(), "contacts")
        .await?
        .ok_or_else(PageError::not_found)?;
    let mut defs: Vec<PropertyDef> = c
        .store
        .properties(c.id(), &ot.type_id, false)
        .await?
        .into_iter()
        .filter(|d| !d.read_only_value && !d.calculated && !d.hidden)
        .collect();
    defs.sort_by(|a, b| {
        (a.name != "email", a.label.to_lowercase())
            .cmp(&(b.name != "email", b.label.to_lowercase()))
    });
    Ok(defs)
}

/// What the create form was sent with, to show it again with its errors.
#[derive(Default)]
struct Draft {
    name: String,
    message: String,
    fields: Vec<String>,
    required: Vec<String>,
}

async fn forms_view(
    c: &Console,
    draft: &Draft,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let forms = c.store.forms(c.id(), false).await?;
    let counts = c.store.form_submission_counts(c.id()).await?;
    let defs = fillable(c).await?;
    let fresh = draft.name.is_empty() && draft.fields.is_empty();
    Ok(c.page(
        "Forms",
        "/app/settings/forms",
        html! {
            h1 { "Forms" }
            (top)
            p.muted { "A form collects contacts from your website: each submission creates the contact with its e-mail address, or updates it. Submissions keep being accepted while the account's data moves to another region; they are then processed after the move." }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Fields" } th scope="col" { "Submissions" } th scope="col" { "Created" } } }
                tbody {
                    @for f in &forms {
                        tr {
                            td { a href=(format!("/app/settings/forms/{}", f.id)) { (f.name) } }
                            td { (f.fields.iter().map(|x| x.label.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { (counts.get(&f.id).copied().unwrap_or(0)) }
                            td { (when(f.created_at)) }
                        }
                    }
                }
            }
            @if forms.is_empty() { p.muted { "No forms yet." } }
            section.card aria-labelledby="create-form" {
                h2 #create-form { "Create a form" }
                form method="post" action="/app/settings/forms" {
                    (csrf(c))
                    (input("name", "Name", "text", &draft.name, Some("Shown to you only, such as \"Newsletter sign-up\"."), true, errors))
                    fieldset aria-describedby=[errors.get("fields").map(|_| "fields-error")] {
                        legend { "Fields" }
                        p.hint { "Each field fills the contact property of the same name. Email is always asked: it says which contact a submission is." }
                        table {
                            thead { tr { th scope="col" { "Ask" } th scope="col" { "Required" } th scope="col" { "Property" } } }
                            tbody {
                                @for d in &defs {
                                    @let asked = d.name == "email" || draft.fields.contains(&d.name) || (fresh && matches!(d.name.as_str(), "firstname" | "lastname"));
                                    @let required = d.name == "email" || draft.required.contains(&d.name);
                                    tr {
                                        td { input type="checkbox" name="field" value=(d.name) id=(format!("field-{}", d.name)) checked[asked] aria-label=(format!("Ask {}", d.label)); }
                                        td { input type="checkbox" name="required" value=(d.name) id=(format!("required-{}", d.name)) checked[required] aria-label=(format!("{} is required", d.label)); }
                                        td { label for=(format!("field-{}", d.name)) { (d.label) } " " span.muted { "(" (d.name) ")" } }
                                    }
                                }
                            }
                        }
                        (error("fields", errors))
                    }
                    (textarea("message", "Message after submitting", &draft.message, Some("Left empty: \"Thanks for submitting the form.\""), errors))
                    p { button type="submit" { "Create form" } }
                }
            }
        },
    ))
}

pub async fn forms(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let top = match q.first("done") {
        Some("archived") => {
            html! { p.flash role="status" { "Form archived. It no longer accepts submissions." } }
        }
        _ => notice(&q),
    };
    forms_view(&c, &Draft::default(), &Errors::default(), top).await
}

pub async fn create_form(
    c: Console,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    c.check_csrf(&get("_csrf"))?;
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut draft = Draft {
        name: get("name"),
        message: get("message"),
        fields: all("field"),
        required: all("required"),
    };
    if !draft.fields.iter().any(|f| f == "email") {
        draft.fields.insert(0, "email".into());
    }
    let defs = fillable(&c).await?;
    let fields: Vec<FormField> = draft
        .fields
        .iter()
        .map(|name| FormField {
            name: name.clone(),
            label: defs
                .iter()
                .find(|d| &d.name == name)
                .map(|d| d.label.clone())
                .unwrap_or_else(|| name.clone()),
            required: name == "email" || draft.required.contains(name),
        })
        .collect();
    let input = FormInput {
        name: Some(draft.name.clone()),
        fields: Some(fields),
        message: Some(draft.message.clone()),
    };
    match c.store.create_form(c.id(), input).await {
        Ok(form) => {
            c.store
                .audit(
                    c.id(),
                    Some(c.session.user.id),
                    &c.session.user.email,
                    "form.created",
                    &format!("form {}", form.id),
                    serde_json::json!({"message": format!("Form \"{}\"", form.name), "form": form.id}),
                )
                .await?;
            Ok(Redirect::to(&format!(
                "/app/settings/forms/{}?done=created-form",
                form.id
            ))
            .into_response())
        }
        Err(e) => {
            let mut errors = Errors::default();
            let status = place_error(
                e,
                &[("name", "name"), ("fieldGroups", "fields")],
                "fields",
                &mut errors,
            )?;
            Ok(reply(
                status,
                forms_view(&c, &draft, &errors, html! {}).await?,
            ))
        }
    }
}

pub async fn form_page(
    c: Console,
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let form = c
        .store
        .form(c.id(), &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let submissions = c.store.form_submissions(c.id(), &id, 20, 0).await?;
    let url = format!(
        "{}/submissions/v3/integration/submit/{}/{}",
        state.jobs.public_url.trim_end_matches('/'),
        c.id(),
        form.id
    );
    let example = serde_json::json!({
        "fields": form.fields.iter().map(|f| serde_json::json!({"objectTypeId": "0-1", "name": f.name, "value": "…"})).collect::<Vec<_>>(),
        "context": {"pageUri": "https://www.example.com/contact", "pageName": "Contact us"},
    });
    let top = match q.first("done") {
        Some("created-form") => {
            html! { p.flash role="status" { "Form created. Send your website's submissions to the address below." } }
        }
        _ => html! {},
    };
    Ok(c.page(
        &form.name,
        "/app/settings/forms",
        html! {
            p { a href="/app/settings/forms" { "← Forms" } }
            h1 { (form.name) }
            (top)
            @if form.archived { p.flash role="status" { "This form is archived: it no longer accepts submissions." } }
            section.card aria-labelledby="fields" {
                h2 #fields { "Fields" }
                ul {
                    @for f in &form.fields {
                        li { (f.label) " " span.muted { "(" (f.name) ")" } @if f.required { " — required" } }
                    }
                }
                p { "After submitting: " q { (form.message) } }
            }
            section.card aria-labelledby="embed" {
                h2 #embed { "Sending submissions" }
                p { "Your website sends each submission as JSON, with " code { "POST" } ", to this address on this server (no token needed; any website may send):" }
                p.secret #submit-url { (url) }
                pre { code { (serde_json::to_string_pretty(&example).unwrap_or_default()) } }
                p.muted { "The answer is " code { "{\"inlineMessage\": …}" } ", the message to show. While this account's data moves to another region, submissions are kept and processed after the move, and the message says so." }
            }
            section.card aria-labelledby="latest" {
                h2 #latest { "Latest submissions" }
                @if submissions.is_empty() { p.muted { "No submissions yet." } } @else {
                    table {
                        thead { tr { th scope="col" { "Submitted" } th scope="col" { "E-mail" } th scope="col" { "Contact" } th scope="col" { "Page" } } }
                        tbody {
                            @for s in &submissions {
                                tr {
                                    td { (when(s.submission.submitted_at)) }
                                    td { (s.submission.values.iter().find(|(n, _)| n == "email").map(|(_, v)| v.as_str()).unwrap_or("")) }
                                    td {
                                        @match (s.contact_id, &s.error) {
                                            (Some(id), _) => { a href=(format!("/app/objects/contacts/{id}")) { "Contact " (id) } },
                                            (None, Some(e)) => { span.error { "Not applied: " (e) } },
                                            (None, None) => { "—" },
                                        }
                                    }
                                    td { (s.submission.page_name.clone().or(s.submission.page_uri.clone()).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            @if !form.archived {
                form method="post" action=(format!("/app/settings/forms/{}/archive", form.id)) {
                    (csrf(&c))
                    button.danger type="submit" { "Archive this form" }
                }
            }
        },
    ))
}

pub async fn archive_form(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let form = c
        .store
        .form(c.id(), &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    if c.store.archive_form(c.id(), &id).await? {
        c.store
            .audit(
                c.id(),
                Some(c.session.user.id),
                &c.session.user.email,
                "form.archived",
                &format!("form {}", form.id),
                serde_json::json!({"message": format!("Form \"{}\"", form.name), "form": form.id}),
            )
            .await?;
    }
    Ok(Redirect::to("/app/settings/forms?done=archived"))
}
