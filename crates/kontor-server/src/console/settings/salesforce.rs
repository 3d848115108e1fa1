//! Settings → Integrations → Salesforce: connect an org by OAuth (authorization code with
//! PKCE; the state is single-use, bound to the account and to the admin who started it), the
//! sync's health and API use, pause and resume, settings, field mappings with their sync
//! rules, and the sync errors with their retry. Admins only; every change is audited.

use super::*;
use crate::salesforce::{self, client, ensure_properties, OBJECTS};
use crate::{oidc, seal, AppState};
use axum::extract::State;
use axum::Form;
use kontor_store::{
    SalesforceConnection, SalesforceMapping, RULE_ALWAYS_SF, RULE_NONE, RULE_PREFER_SF,
    RULE_TWO_WAY, SALESFORCE_RULES,
};
use serde_json::json;

const PAGE: &str = "/app/settings/integrations/salesforce";
const FLOW: &str = "salesforce";

pub fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}{PAGE}/callback",
        state.jobs.public_url.trim_end_matches('/')
    )
}

fn rule_label(rule: &str) -> &'static str {
    match rule {
        RULE_PREFER_SF => "Prefer Salesforce unless blank",
        RULE_ALWAYS_SF => "Always use Salesforce",
        RULE_TWO_WAY => "Two-way",
        RULE_NONE => "Don't sync",
        _ => "Unknown",
    }
}

fn done(q: &QueryParams) -> Markup {
    let m = match q.first("done") {
        Some("connected") => {
            "Salesforce connected. The first sync has started: records appear as it reads them."
        }
        Some("paused") => "Sync paused. Changes wait on both sides until it resumes.",
        Some("resumed") => "Sync resumed.",
        Some("sync") => "A sync round starts in a moment.",
        Some("retry") => "The errors will be tried again in the next round.",
        Some("settings") => "Settings saved.",
        Some("mapping") => "Mapping saved.",
        _ => return notice(q),
    };
    html! { p.flash role="status" { (m) } }
}

async fn view(
    c: &Console,
    state: &AppState,
    conn: Option<&SalesforceConnection>,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let enabled = state.salesforce.enabled();
    let kept = conn.filter(|c| c.state == kontor_store::SF_UNINSTALLED);
    let sf_owners = c.store.salesforce_only_owners(c.id()).await?.len();
    let body = match conn.filter(|c| c.state != kontor_store::SF_UNINSTALLED) {
        None => html! {
            @if let Some(k) = kept {
                p.flash #sf-kept role="status" {
                    "The integration with " (k.org_name) " was uninstalled " @if let Some(t) = k.disconnected_at { "on " (when(t)) } ". "
                    "Its settings, mappings and id crosswalk are kept until " @if let Some(t) = k.keep_until { (iso(t)) } ": connecting the same org again before then re-links the records instead of duplicating them."
                }
            }
            @if sf_owners > 0 {
                p #sf-owners-left { (sf_owners) @if sf_owners == 1 { " Salesforce-only owner is left. " } @else { " Salesforce-only owners are left. " } a href=(format!("{PAGE}/owners")) { "Reassign their records" } " or " a href=(format!("{PAGE}/owners/cleanup")) { "clean them up" } "." }
            }
            section.card aria-labelledby="sf-connect" {
                h2 #sf-connect { "Connect Salesforce" }
                p { "Sync contacts with Leads and Contacts, companies with Accounts and deals with Opportunities, both ways, with owners matched by e-mail." }
                @if enabled {
                    p { "You sign in to Salesforce with a user the integration acts as; kontor keeps its tokens encrypted." }
                    form method="post" action=(format!("{PAGE}/connect")) {
                        (csrf(c))
                        p { button #sf-connect-button type="submit" { "Connect to Salesforce" } }
                    }
                } @else {
                    p.muted { "The server's operator has not set up a Salesforce connected app ([salesforce] client_id and client_secret), so Salesforce cannot be connected yet." }
                }
                (error("connect", errors))
            }
        },
        Some(s) => connected(c, s, errors).await?,
    };
    Ok(c.page(
        "Salesforce",
        PAGE,
        html! {
            h1 { "Salesforce" }
            (top)
            (body)
        },
    ))
}

async fn connected(
    c: &Console,
    s: &SalesforceConnection,
    errors: &Errors,
) -> Result<Markup, PageError> {
    let counts = c.store.salesforce_counts(c.id()).await?;
    let mappings = c.store.salesforce_mappings(c.id()).await?;
    let sync_errors = c.store.salesforce_errors(c.id()).await?;
    let budget = s.org_limit.unwrap_or(15_000) * s.settings.budget_percent / 100;
    let calls = if s.calls_window_start + DAY_MS <= kontor_domain::time::now_ms() {
        0
    } else {
        s.calls
    };
    let paused = s.state == kontor_store::SF_PAUSED;
    // An inclusion list of one "equals" filter is edited here; others through the API.
    let simple = s.settings.inclusion.as_ref().and_then(|f| {
        let groups = f["filterGroups"].as_array()?;
        let [g] = groups.as_slice() else { return None };
        let filters = g["filters"].as_array()?;
        let [one] = filters.as_slice() else {
            return None;
        };
        (one["operator"] == "EQ").then_some(())?;
        Some((one["propertyName"].as_str()?, one["value"].as_str()?))
    });
    Ok(html! {
        section.card aria-labelledby="sf-status" {
            h2 #sf-status { "Connection" }
            dl.facts {
                dt { "Organization" } dd #sf-org { (s.org_name) " (" (s.org_id) ")" }
                dt { "Salesforce user" } dd #sf-user { (s.username) " · " (s.user_email) }
                dt { "Instance" } dd { code { (s.instance_url) } }
                dt { "State" } dd #sf-state {
                    @if paused { "Paused" @if let Some(r) = &s.paused_reason { ": " (r) } } @else if s.state == kontor_store::SF_UNINSTALLING { "Being uninstalled" } @else { "Syncing" }
                }
                dt { "Last round" } dd #sf-last-round { @match s.last_round_at { Some(t) => (when(t)), None => "Not yet" } }
                dt { "Last success" } dd { @match s.last_ok_at { Some(t) => (when(t)), None => "Not yet" } }
                @if let Some(e) = &s.last_error { dt { "Last problem" } dd #sf-last-error.error { (e) } }
                dt { "API calls, last 24 hours" } dd #sf-calls { (calls) " of a budget of " (budget) " (" (s.settings.budget_percent) "% of the org's daily limit)" }
            }
            h3 { "Linked records" }
            ul #sf-counts {
                @for (t, n) in &counts.links {
                    li { (kontor_domain::BuiltinObject::by_type_id(t).map_or(t.as_str(), |b| b.label_plural)) ": " (n) }
                }
                li { "Sync errors: " (counts.errors) }
                li { "Salesforce-only owners (no user here): " (counts.salesforce_only_owners) }
                li { "Changes waiting to be sent: " (counts.pending_changes) }
            }
            form.actions-row method="post" action=(PAGE) {
                (csrf(c))
                @if paused {
                    button type="submit" name="action" value="resume" { "Resume sync" }
                } @else {
                    button type="submit" name="action" value="sync" { "Sync now" }
                    button.secondary type="submit" name="action" value="pause" { "Pause sync" }
                }
            }
        }
        @if s.state == kontor_store::SF_UNINSTALLING {
            p.warning #sf-uninstalling role="status" { "The integration is being uninstalled. " a href=(format!("{PAGE}/uninstall")) { "See its progress" } "." }
        }
        section.card aria-labelledby="sf-settings" {
            h2 #sf-settings { "Settings" }
            form method="post" action=(PAGE) {
                (csrf(c))
                input type="hidden" name="action" value="settings";
                (select("contacts_as", "New contacts are created in Salesforce as", &[("Lead".into(), "Leads".into()), ("Contact".into(), "Contacts".into())], &s.settings.contacts_as, errors))
                (input("budget_percent", "API call budget (% of the org's daily limit)", "number", &s.settings.budget_percent.to_string(), Some("The sync stops for the day when it has used this share, and leaves the rest to your other integrations."), true, errors))
                fieldset {
                    legend { "Inclusion list: contacts sent to Salesforce" }
                    @match (&s.settings.inclusion, simple) {
                        (None, _) => p.muted #sf-inclusion-now { "Now: every contact." },
                        (Some(_), Some((p, v))) => p.muted #sf-inclusion-now { "Now: contacts whose " code { (p) } " is “" (v) "”." },
                        (Some(f), None) => {
                            p.muted #sf-inclusion-now { "Now: contacts matching a filter set through the API: " code { (f.to_string()) } ". Leave the fields below empty to keep it." }
                            input type="hidden" name="inclusion_keep" value="1";
                        }
                    }
                    (input("inclusion_property", "Only contacts whose property (internal name)", "text", simple.map_or("", |x| x.0), Some("Leave empty to send every contact."), false, errors))
                    (input("inclusion_value", "equals", "text", simple.map_or("", |x| x.1), None, false, errors))
                }
                p { button type="submit" { "Save settings" } }
            }
            @if OBJECTS.iter().any(|(t, _)| !s.settings.external_ids.contains_key(*t)) && s.settings.described_at.is_some() {
                p.muted #sf-external-id-hint {
                    "To create records in Salesforce, add a text field named Kontor_Id__c, marked External ID and Unique, to: "
                    (OBJECTS.iter().filter(|(t, _)| !s.settings.external_ids.contains_key(*t)).map(|(t, _)| *t).collect::<Vec<_>>().join(", "))
                    ". Without it kontor updates linked records but creates none there, so that a retried send can never create a record twice."
                }
            }
        }
        section.card aria-labelledby="sf-mappings" {
            h2 #sf-mappings { "Field mappings" }
            table {
                thead { tr { th { "Salesforce field" } th { "Property" } th { "Sync rule" } th {} } }
                tbody {
                    @for m in &mappings {
                        tr {
                            td { (m.sf_type) "." (m.sf_field) }
                            td { (m.property) }
                            td {
                                form.inline method="post" action=(PAGE) {
                                    (csrf(c))
                                    input type="hidden" name="action" value="mapping";
                                    input type="hidden" name="sf_type" value=(m.sf_type);
                                    input type="hidden" name="sf_field" value=(m.sf_field);
                                    input type="hidden" name="property" value=(m.property);
                                    label.visually-hidden for=(format!("rule-{}-{}", m.sf_type, m.sf_field)) { "Sync rule of " (m.sf_type) "." (m.sf_field) }
                                    select id=(format!("rule-{}-{}", m.sf_type, m.sf_field)) name="rule" {
                                        @for r in SALESFORCE_RULES { option value=(r) selected[*r == m.rule] { (rule_label(r)) } }
                                    }
                                    " "
                                    button.secondary type="submit" { "Save" }
                                }
                            }
                            td {}
                        }
                    }
                }
            }
            h3 { "Add a mapping" }
            form method="post" action=(PAGE) {
                (csrf(c))
                input type="hidden" name="action" value="mapping";
                (select("sf_type", "Salesforce object", &OBJECTS.iter().map(|(t, _)| ((*t).to_string(), (*t).to_string())).collect::<Vec<_>>(), "Contact", errors))
                (input("sf_field", "Salesforce field (API name)", "text", "", Some("For example Department or Region__c."), true, errors))
                (input("property", "Property (internal name)", "text", "", None, true, errors))
                (select("rule", "Sync rule", &SALESFORCE_RULES.iter().map(|r| ((*r).to_string(), rule_label(r).to_string())).collect::<Vec<_>>(), RULE_TWO_WAY, errors))
                p { button type="submit" { "Add mapping" } }
            }
        }
        section.card aria-labelledby="sf-errors" {
            h2 #sf-errors { "Sync errors" }
            @if sync_errors.is_empty() {
                p #sf-no-errors { "No sync errors." }
            } @else {
                form method="post" action=(PAGE) {
                    (csrf(c))
                    input type="hidden" name="action" value="retry_all";
                    p { button type="submit" { "Retry all" } }
                }
                table #sf-error-list {
                    thead { tr { th { "Record" } th { "Direction" } th { "Category" } th { "Reason" } th { "Last seen" } th {} } }
                    tbody {
                        @for e in &sync_errors {
                            tr {
                                td {
                                    @if let Some(r) = e.record_id {
                                        @let b = kontor_domain::BuiltinObject::by_type_id(&e.object_type);
                                        a href=(format!("/app/objects/{}/{r}", b.map_or(e.object_type.as_str(), |b| b.name))) { (b.map_or(e.object_type.as_str(), |b| b.label_singular)) " " (r) }
                                    }
                                    @if let Some(sf) = &e.sf_id { " · " (e.sf_type) " " (sf) }
                                }
                                td { @if e.direction == "push" { "To Salesforce" } @else { "From Salesforce" } }
                                td { (e.category) }
                                td { code { (e.code) } " " (e.message) }
                                td { (when(e.last_at)) }
                                td {
                                    form.inline method="post" action=(PAGE) {
                                        (csrf(c))
                                        input type="hidden" name="action" value="retry";
                                        input type="hidden" name="error" value=(e.id);
                                        button.secondary type="submit" { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="sf-disconnect" {
            h2 #sf-disconnect { "Disconnect" }
            p.muted { "Stops the sync, revokes kontor's access to Salesforce and removes the integration's settings. You first see what it would change. Uninstalling and reinstalling does not fix sync errors: fix their cause above and retry them." }
            @if counts.salesforce_only_owners > 0 { p { a href=(format!("{PAGE}/owners")) { "Reassign Salesforce owners" } } }
            p { a.button.danger #sf-disconnect-button href=(format!("{PAGE}/uninstall")) { "Disconnect" } }
        }
    })
}

pub async fn page(
    State(state): State<AppState>,
    c: Console,
    q: QueryParams,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let conn = c.store.salesforce_connection(c.id()).await?;
    let page = view(&c, &state, conn.as_ref(), &Errors::default(), done(&q)).await?;
    // Connect's form is answered with a redirect to Salesforce's login, which the console's
    // policy (forms to this server only) would stop.
    let origin = url::Url::parse(&state.salesforce.login_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = crate::headers::csp_with_form_action(&origin);
    let mut resp = page.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActionForm {
    action: String,
    contacts_as: String,
    budget_percent: String,
    sf_type: String,
    sf_field: String,
    property: String,
    rule: String,
    error: String,
    inclusion_property: String,
    inclusion_value: String,
    inclusion_keep: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

pub async fn action(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<ActionForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let Some(conn) = c
        .store
        .salesforce_connection(c.id())
        .await?
        .filter(|s| s.state != "uninstalled")
    else {
        return Ok(Redirect::to(PAGE).into_response());
    };
    let target = format!("salesforce:{}", conn.org_id);
    let mut errors = Errors::default();
    let done = match f.action.as_str() {
        "pause" => {
            c.store
                .set_salesforce_paused(c.id(), Some("Paused by an admin."))
                .await?;
            log_action(&c, "salesforce.pause", &target, json!({})).await?;
            "paused"
        }
        "resume" => {
            c.store.set_salesforce_paused(c.id(), None).await?;
            log_action(&c, "salesforce.resume", &target, json!({})).await?;
            "resumed"
        }
        "sync" => {
            c.store.salesforce_sync_now(c.id()).await?;
            "sync"
        }
        "retry" | "retry_all" => {
            let id = f.error.parse::<i64>().ok();
            let n = c.store.retry_salesforce_errors(c.id(), id).await?;
            log_action(
                &c,
                "salesforce.errors.retry",
                &target,
                json!({"id": id, "count": n}),
            )
            .await?;
            "retry"
        }
        "settings" => {
            let mut s = conn.settings.clone();
            if f.contacts_as == "Lead" || f.contacts_as == "Contact" {
                s.contacts_as = f.contacts_as.clone();
            } else {
                errors.add("contacts_as", "Choose Leads or Contacts.");
            }
            match f.budget_percent.trim().parse::<i64>() {
                Ok(p) if (1..=100).contains(&p) => s.budget_percent = p,
                _ => errors.add("budget_percent", "Enter a whole number from 1 to 100."),
            }
            let property = f.inclusion_property.trim();
            if property.is_empty() {
                if f.inclusion_keep.is_empty() {
                    s.inclusion = None;
                }
            } else {
                let filter = json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": f.inclusion_value.trim()}]}]});
                let defs = c.store.properties(c.id(), "0-1", false).await?;
                match salesforce::inclusion(&filter, &defs) {
                    Ok(_) => s.inclusion = Some(filter),
                    Err(m) => errors.add("inclusion_property", sentence(&m)),
                }
            }
            if errors.is_empty() {
                c.store.set_salesforce_settings(c.id(), &s).await?;
                log_action(
                    &c,
                    "salesforce.settings",
                    &target,
                    json!({"contactsAs": s.contacts_as, "budgetPercent": s.budget_percent, "inclusionFilter": s.inclusion}),
                )
                .await?;
            }
            "settings"
        }
        "mapping" => {
            let sf_type = f.sf_type.trim();
            let field = f.sf_field.trim();
            let property = f.property.trim();
            let kontor = OBJECTS.iter().find(|(t, _)| *t == sf_type).map(|(_, k)| *k);
            match kontor {
                None => errors.add("sf_type", "Choose a Salesforce object."),
                Some(k) => {
                    let def = c
                        .store
                        .property(c.id(), k, property)
                        .await?
                        .filter(|d| !d.archived);
                    match def {
                        None => errors.add(
                            "property",
                            format!("There is no property “{property}” of this object."),
                        ),
                        Some(def) => {
                            if let Some(fields) = conn.settings.fields.get(sf_type) {
                                match fields.get(field) {
                                    None => errors.add("sf_field", format!("{sf_type} has no field “{field}” in Salesforce.")),
                                    Some(sf) if !salesforce::api::compatible(def.kind.as_str(), &sf.kind) => errors.add(
                                        "property",
                                        format!("{sf_type}.{field} is a {} field; “{property}” is of type {}, which cannot hold its values.", sf.kind, def.kind.as_str()),
                                    ),
                                    Some(_) => {}
                                }
                            }
                        }
                    }
                }
            }
            if !SALESFORCE_RULES.contains(&f.rule.as_str()) {
                errors.add("rule", "Choose a sync rule.");
            }
            if errors.is_empty() {
                let m = SalesforceMapping {
                    sf_type: sf_type.into(),
                    sf_field: field.into(),
                    property: property.into(),
                    rule: f.rule.clone(),
                    custom: !salesforce::default_mappings()
                        .iter()
                        .any(|d| d.sf_type == sf_type && d.sf_field == field),
                };
                c.store.set_salesforce_mapping(c.id(), &m).await?;
                log_action(
                    &c,
                    "salesforce.mapping.set",
                    &format!("salesforce:{sf_type}.{field}"),
                    salesforce::api::mapping_json(&m),
                )
                .await?;
            }
            "mapping"
        }
        _ => return Ok(Redirect::to(PAGE).into_response()),
    };
    if !errors.is_empty() {
        return Ok(reply(
            StatusCode::BAD_REQUEST,
            view(&c, &state, Some(&conn), &errors, html! {}).await?,
        ));
    }
    Ok(Redirect::to(&format!("{PAGE}?done={done}")).into_response())
}

/// Starts the OAuth flow: a state bound to this account and admin, and a PKCE verifier.
pub async fn connect(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    if !state.salesforce.enabled() {
        return Ok(Redirect::to(PAGE).into_response());
    }
    let flow_state = format!("{}.{}", c.id(), oidc::random_b64(32));
    let verifier = oidc::random_b64(32);
    c.store
        .begin_flow(
            FLOW,
            c.id(),
            &flow_state,
            &c.session.user.id.to_string(),
            &verifier,
        )
        .await?;
    Ok(Redirect::to(&client::authorize_url(
        &state.salesforce,
        &redirect_uri(&state),
        &flow_state,
        &verifier,
    ))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Callback {
    state: String,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn failed(message: String) -> PageError {
    PageError::new(
        StatusCode::BAD_GATEWAY,
        "Salesforce was not connected",
        format!(
            "{message} Nothing was changed. Try again from Settings → Integrations → Salesforce."
        ),
    )
}

/// Salesforce sends the admin back here with a code: exchange it, read who and which org it
/// is, and save the connection.
pub async fn callback(
    State(state): State<AppState>,
    c: Console,
    axum::extract::Query(q): axum::extract::Query<Callback>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let flow = c.store.take_flow(FLOW, c.id(), &q.state).await?;
    let Some(flow) = flow.filter(|f| f.nonce == c.session.user.id.to_string()) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Salesforce was not connected",
            "This link is not valid or has expired. Start again from Settings → Integrations → Salesforce.",
        ));
    };
    if let Some(e) = &q.error {
        let m = format!(
            "Salesforce answered {e}: {}.",
            q.error_description.as_deref().unwrap_or("no reason given")
        );
        log_action(
            &c,
            "salesforce.connect.failed",
            "salesforce",
            json!({"message": m}),
        )
        .await?;
        return Err(failed(m));
    }
    let code = q.code.as_deref().unwrap_or_default();
    let policy = &state.salesforce;
    let token = client::exchange_code(policy, code, &flow.verifier, &redirect_uri(&state))
        .await
        .map_err(|e| failed(format!("{}.", sentence(&e.to_string()))))?;
    let who = client::identity(&token)
        .await
        .map_err(|e| failed(format!("{}.", sentence(&e.to_string()))))?;
    let org_id = who["organization_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let org_name = {
        let mut api = client::Api::new(
            policy,
            &token.instance_url,
            token.access_token.clone(),
            token.refresh_token.clone().unwrap_or_default(),
            1,
        )
        .map_err(|e| failed(e.to_string()))?;
        api.query("SELECT Name FROM Organization", false)
            .await
            .ok()
            .and_then(|p| {
                p.records
                    .first()
                    .and_then(|r| r["Name"].as_str().map(str::to_string))
            })
            .unwrap_or_else(|| org_id.clone())
    };
    let Some(refresh) = token.refresh_token.clone() else {
        return Err(failed(
            "Salesforce gave no refresh token: give the connected app the refresh_token scope."
                .into(),
        ));
    };
    let keys = &state.jobs.keys;
    let conn = c
        .store
        .connect_salesforce(
            c.id(),
            &kontor_store::NewSalesforceConnection {
                org_id: org_id.clone(),
                org_name: org_name.clone(),
                sf_user_id: who["user_id"].as_str().unwrap_or_default().to_string(),
                username: who["username"].as_str().unwrap_or_default().to_string(),
                user_email: who["email"].as_str().unwrap_or_default().to_string(),
                instance_url: token.instance_url.clone(),
                access_sealed: seal::seal(keys, token.access_token.as_bytes()),
                refresh_sealed: seal::seal(keys, refresh.as_bytes()),
                connected_by: Some(c.session.user.id),
            },
            &salesforce::default_mappings(),
        )
        .await?;
    ensure_properties(&c.store, c.id()).await?;
    log_action(
        &c,
        "salesforce.connect",
        &format!("salesforce:{org_id}"),
        json!({"org": org_name, "username": conn.username, "instanceUrl": conn.instance_url}),
    )
    .await?;
    Ok(Redirect::to(&format!("{PAGE}?done=connected")).into_response())
}
