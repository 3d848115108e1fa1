//! Settings → Webhooks: the account's apps (where events go), each with its subscriptions and
//! its delivery log. Admins only; every change is audited.

use super::*;
use crate::error::ApiError;
use crate::webhooks::{check_subscription, new_secret};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Form;
use kontor_store::{WebhookApp, EVENT_TYPES};

/// How many of an app's latest events its page lists.
const LOG_ROWS: i64 = 50;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AppForm {
    name: String,
    target_url: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// One form for every change on an app's page; `action` says which.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AppActionForm {
    action: String,
    target_url: String,
    max_concurrent: String,
    event_type: String,
    property_name: String,
    object_type_id: String,
    subscription: String,
    confirm: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// A subscription in words, for the labels of its buttons.
fn describe(s: &kontor_store::WebhookSubscription) -> String {
    match (&s.property_name, &s.object_type_id) {
        (Some(p), _) => format!("{} of {p}", s.event_type),
        (None, Some(t)) => format!("{} of {t}", s.event_type),
        _ => s.event_type.clone(),
    }
}

/// A moment to the second, in UTC: retries are seconds apart.
fn moment(ms: i64) -> Markup {
    let shown = iso(ms).get(..19).unwrap_or_default().replace('T', " ");
    html! { time.nowrap datetime=(iso(ms)) { (shown) " UTC" } }
}

fn api_error(e: ApiError, fallback: &str, errors: &mut Errors) -> StatusCode {
    let id = match e.in_field.as_deref() {
        Some("targetUrl") => "target_url",
        Some("propertyName") => "property_name",
        Some("objectTypeId") => "object_type_id",
        Some("eventType") => "event_type",
        _ => fallback,
    };
    errors.add(id, sentence(&e.message));
    e.status
}

async fn list_view(
    c: &Console,
    f: &AppForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let apps = c.store.webhook_apps(c.id()).await?;
    let mut rows = Vec::new();
    for a in &apps {
        rows.push((a, c.store.webhook_delivery_counts(c.id(), a.id).await?));
    }
    Ok(c.page(
        "Webhooks",
        "/app/settings/webhooks",
        html! {
            h1 { "Webhooks" }
            (top)
            p.muted { "An app receives this account's changes as they happen: each change to a record or an association it subscribes to is sent to its target URL, signed with its client secret as HubSpot signs webhooks (X-HubSpot-Signature-v3), and sent again until the target accepts it." }
            table {
                thead { tr { th scope="col" { "App" } th scope="col" { "Target URL" } th scope="col" { "Waiting" } th scope="col" { "Delivered" } th scope="col" { "Failed" } } }
                tbody {
                    @for (a, n) in &rows {
                        tr id=(format!("app-{}", a.id)) {
                            td { a href=(format!("/app/settings/webhooks/{}", a.id)) { (a.name) } " " span.muted { "(app " (a.id) ")" } }
                            td { @match &a.target_url { Some(u) => code { (u) }, None => span.muted { "None: events wait" } } }
                            td { (n.pending) }
                            td { (n.delivered) }
                            td { (n.failed) }
                        }
                    }
                }
            }
            @if apps.is_empty() { p.muted { "No apps yet." } }
            section.card aria-labelledby="create-app" {
                h2 #create-app { "Add an app" }
                form method="post" action="/app/settings/webhooks" {
                    (csrf(c))
                    (input("name", "Name", "text", &f.name, Some("What receives the events, such as the program that syncs them."), true, errors))
                    (input("target_url", "Target URL", "url", &f.target_url, Some("Where events are sent (POST). You can set it later."), false, errors))
                    p { button type="submit" { "Add app" } }
                }
            }
        },
    ))
}

pub async fn webhooks(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    list_view(&c, &AppForm::default(), &Errors::default(), notice(&q)).await
}

pub async fn create_app(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<AppForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let mut errors = Errors::default();
    let name = f.name.trim();
    if name.is_empty() {
        errors.add("name", "Give the app a name.");
    }
    let target = f.target_url.trim();
    let url = if target.is_empty() {
        None
    } else {
        match state.webhooks.check_target(target) {
            Ok(u) => Some(u),
            Err(e) => {
                api_error(e, "target_url", &mut errors);
                None
            }
        }
    };
    if !errors.is_empty() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            list_view(&c, &f, &errors, html! {}).await?,
        ));
    }
    let secret = new_secret();
    let sealed = crate::seal::seal(&state.jobs.keys, secret.as_bytes());
    let a = c
        .store
        .create_webhook_app(c.id(), name, url.as_deref(), &sealed)
        .await?;
    log_action(
        &c,
        "webhooks.app.create",
        &format!("app:{}", a.id),
        serde_json::json!({"name": a.name, "targetUrl": a.target_url}),
    )
    .await?;
    let top = html! {
        div.flash role="status" {
            p { "App " strong { (a.name) } " added (app id " (a.id) "). Copy its client secret now: it will not be shown again. Receivers check each request's signature with it." }
            p.secret #new-secret { (secret) }
            p { a href=(format!("/app/settings/webhooks/{}", a.id)) { "Choose what it subscribes to" } }
        }
    };
    Ok(list_view(&c, &AppForm::default(), &Errors::default(), top)
        .await?
        .into_response())
}

async fn app_of(c: &Console, id: &str) -> Result<WebhookApp, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    c.store
        .webhook_app(c.id(), id)
        .await?
        .ok_or_else(PageError::not_found)
}

async fn app_view(
    c: &Console,
    a: &WebhookApp,
    f: &AppActionForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let subs = c.store.webhook_subscriptions(c.id(), a.id).await?;
    let counts = c.store.webhook_delivery_counts(c.id(), a.id).await?;
    let events = c.store.webhook_events(c.id(), a.id, None, LOG_ROWS).await?;
    let path = format!("/app/settings/webhooks/{}", a.id);
    // After a refused change, the values as typed.
    let (target, max) = if f.action == "settings" {
        (f.target_url.clone(), f.max_concurrent.clone())
    } else {
        (
            a.target_url.clone().unwrap_or_default(),
            a.max_concurrent.to_string(),
        )
    };
    let types: Vec<(String, String)> = EVENT_TYPES
        .iter()
        .map(|t| (t.to_string(), t.to_string()))
        .collect();
    Ok(c.page(
        &format!("Webhooks: {}", a.name),
        "/app/settings/webhooks",
        html! {
            p { a href="/app/settings/webhooks" { "← Webhooks" } }
            h1 { (a.name) " " span.muted { "(app " (a.id) ")" } }
            (top)
            section.card aria-labelledby="target" {
                h2 #target { "Target" }
                form method="post" action=(path) {
                    (csrf(c))
                    input type="hidden" name="action" value="settings";
                    (input("target_url", "Target URL", "url", &target, Some("Events are POSTed here as JSON arrays of up to 100."), true, errors))
                    (input("max_concurrent", "Requests at once", "number", &max, Some("At most this many requests to the target are in flight at a time (1 to 100)."), true, errors))
                    p { button type="submit" { "Save target" } }
                }
            }
            section.card aria-labelledby="subs" {
                h2 #subs { "Subscriptions" }
                table {
                    thead { tr { th scope="col" { "Event" } th scope="col" { "Property" } th scope="col" { "State" } th scope="col" { "Change" } } }
                    tbody {
                        @for s in &subs {
                            tr id=(format!("sub-{}", s.id)) {
                                td { (s.event_type) @if let Some(t) = &s.object_type_id { " (" (t) ")" } }
                                td { (s.property_name.as_deref().unwrap_or("")) }
                                td { @if s.active { "Active" } @else { "Paused" } }
                                td {
                                    form.inline method="post" action=(path) {
                                        (csrf(c))
                                        input type="hidden" name="subscription" value=(s.id);
                                        button type="submit" name="action" value=(if s.active { "pause" } else { "resume" })
                                            aria-label=(format!("{} {}", if s.active { "Pause" } else { "Resume" }, describe(s))) {
                                            @if s.active { "Pause" } @else { "Resume" }
                                        }
                                        " "
                                        button.danger type="submit" name="action" value="unsubscribe" aria-label=(format!("Remove {}", describe(s))) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
                @if subs.is_empty() { p.muted { "No subscriptions: nothing is sent." } }
                h3 { "Subscribe" }
                form method="post" action=(path) {
                    (csrf(c))
                    input type="hidden" name="action" value="subscribe";
                    (select("event_type", "Event", &types, &f.event_type, errors))
                    (input("property_name", "Property", "text", &f.property_name, Some("For property changes: the property's internal name, such as email."), false, errors))
                    (input("object_type_id", "Custom object type", "text", &f.object_type_id, Some("For object.* events: the custom object's type id, such as 2-123."), false, errors))
                    p { button type="submit" { "Subscribe" } }
                }
            }
            section.card aria-labelledby="log" {
                h2 #log { "Delivery log" }
                p { (counts.pending) " waiting, " (counts.delivered) " delivered, " (counts.failed) " failed. The latest " (LOG_ROWS) ":" }
                table {
                    thead { tr { th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Record" } th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Made" } } }
                    tbody {
                        @for e in &events {
                            tr id=(format!("event-{}", e.id)) {
                                td { (e.id) }
                                td { (e.event_type) }
                                td { (e.object_id) }
                                td { @match e.state.as_str() {
                                    "delivered" => { "Delivered" },
                                    "failed" => { strong { "Failed" } },
                                    _ => { "Waiting (next try " (moment(e.next_at)) ")" },
                                } }
                                td { (e.attempts) }
                                td { @if let Some(s) = e.last_status { (s) " " } @if let Some(err) = &e.last_error { span.muted { (err) } } }
                                td { (moment(e.created_at)) }
                            }
                        }
                    }
                }
                @if events.is_empty() { p.muted { "Nothing sent yet." } }
                @if counts.failed > 0 {
                    form method="post" action=(path) {
                        (csrf(c))
                        button type="submit" name="action" value="retry" { "Send the failed events again" }
                    }
                }
            }
            section.card aria-labelledby="remove" {
                h2 #remove { "Remove the app" }
                p.muted { "Its subscriptions and its events, sent or not, go with it." }
                form method="post" action=(path) data-confirm=(format!("Remove {} with its subscriptions and its events, sent or not?", a.name)) {
                    (csrf(c))
                    input type="hidden" name="action" value="delete";
                    button.danger type="submit" { "Remove " (a.name) }
                }
            }
            (confirm_dialog("Remove the app?", "Remove"))
        },
    ))
}

pub async fn app_page(
    c: Console,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let a = app_of(&c, &id).await?;
    let top = match q.first("done") {
        Some("target") => html! { p.flash role="status" { "Target saved." } },
        Some("subscribed") => html! { p.flash role="status" { "Subscribed." } },
        Some("subscription") => html! { p.flash role="status" { "Subscription changed." } },
        Some("retried") => {
            html! { p.flash role="status" { "The failed events will be sent again." } }
        }
        _ => html! {},
    };
    app_view(&c, &a, &AppActionForm::default(), &Errors::default(), top).await
}

pub async fn app_action(
    State(state): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<AppActionForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let a = app_of(&c, &id).await?;
    let path = format!("/app/settings/webhooks/{}", a.id);
    let target = format!("app:{}", a.id);
    let mut errors = Errors::default();
    let done = match f.action.as_str() {
        "settings" => {
            let max: Option<i64> = f
                .max_concurrent
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=100).contains(n));
            if max.is_none() {
                errors.add("max_concurrent", "Give a number from 1 to 100.");
            }
            match state.webhooks.check_target(&f.target_url) {
                Ok(url) if errors.is_empty() => {
                    let max = max.unwrap_or(a.max_concurrent);
                    c.store
                        .set_webhook_target(c.id(), a.id, Some(&url), max)
                        .await?;
                    log_action(
                        &c,
                        "webhooks.settings",
                        &target,
                        serde_json::json!({"targetUrl": url, "maxConcurrentRequests": max}),
                    )
                    .await?;
                    "target"
                }
                Ok(_) => "",
                Err(e) => {
                    api_error(e, "target_url", &mut errors);
                    ""
                }
            }
        }
        "subscribe" => {
            let checked = check_subscription(
                &c.store,
                c.id(),
                &f.event_type,
                Some(f.object_type_id.trim()),
                Some(f.property_name.trim()),
            )
            .await;
            match checked {
                Ok(input) => match c
                    .store
                    .create_webhook_subscription(c.id(), a.id, &input)
                    .await
                {
                    Ok(s) => {
                        log_action(&c, "webhooks.subscription.create", &target, serde_json::json!({"id": s.id, "eventType": s.event_type, "propertyName": s.property_name})).await?;
                        "subscribed"
                    }
                    Err(e) => {
                        let status = place_error(e, &[], "event_type", &mut errors)?;
                        return Ok(reply(
                            status,
                            app_view(&c, &a, &f, &errors, html! {}).await?,
                        ));
                    }
                },
                Err(e) => {
                    let status = api_error(e, "event_type", &mut errors);
                    return Ok(reply(
                        status,
                        app_view(&c, &a, &f, &errors, html! {}).await?,
                    ));
                }
            }
        }
        "pause" | "resume" | "unsubscribe" => {
            let sid: i64 = f.subscription.parse().map_err(|_| PageError::not_found())?;
            if f.action == "unsubscribe" {
                if !c
                    .store
                    .delete_webhook_subscription(c.id(), a.id, sid)
                    .await?
                {
                    return Err(PageError::not_found());
                }
            } else if c
                .store
                .set_webhook_subscriptions_active(c.id(), a.id, &[(sid, f.action == "resume")])
                .await?
                .is_empty()
            {
                return Err(PageError::not_found());
            }
            log_action(
                &c,
                &format!("webhooks.subscription.{}", f.action),
                &target,
                serde_json::json!({"id": sid}),
            )
            .await?;
            "subscription"
        }
        "retry" => {
            let n = c.store.retry_failed_webhook_events(c.id(), a.id).await?;
            log_action(
                &c,
                "webhooks.events.retry",
                &target,
                serde_json::json!({"events": n}),
            )
            .await?;
            "retried"
        }
        "delete" if f.confirm != "yes" => {
            // Without the console script, the server asks on a page of its own.
            let title = format!("Remove {}?", a.name);
            let q = Confirm {
                title: &title,
                text: "Its subscriptions and its events, sent or not, go with it.",
                path: &path,
                action: "delete",
                button: "Remove",
                cancel: &path,
                nav: "/app/settings/webhooks",
            };
            return Ok(confirm_page(&c, &q).into_response());
        }
        "delete" => {
            c.store.delete_webhook_app(c.id(), a.id).await?;
            log_action(
                &c,
                "webhooks.app.delete",
                &target,
                serde_json::json!({"name": a.name}),
            )
            .await?;
            return Ok(Redirect::to("/app/settings/webhooks?done=app-removed").into_response());
        }
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "That is not something this page does.",
            ))
        }
    };
    if !errors.is_empty() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            app_view(&c, &a, &f, &errors, html! {}).await?,
        ));
    }
    Ok(Redirect::to(&format!("{path}?done={done}")).into_response())
}
