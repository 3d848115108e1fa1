use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::{Region, Role};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    name: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn account_view(c: &Console, name: &str, errors: &Errors, top: Markup) -> Markup {
    let a = &c.account;
    let region = match a.region {
        Region::Us => "United States (US)",
        Region::Eu => "European Union (EU)",
    };
    let tier = a.tier.as_str();
    c.page(
        "Account defaults",
        "/app/settings/account",
        html! {
            h1 { "Account defaults" }
            (top)
            section.card aria-labelledby="account-name" {
                h2 #account-name { "Account name" }
                @if c.role() == Role::SuperAdmin {
                    form method="post" action="/app/settings/account" {
                        (csrf(c))
                        (input("name", "Name", "text", name, Some("Shown at the top of every page of the console."), true, errors))
                        p { button type="submit" { "Save name" } }
                    }
                } @else {
                    p { (a.name) }
                    p.muted { "Only a super admin can rename the account." }
                }
            }
            section.card aria-labelledby="plan" {
                h2 #plan { "Subscription and hosting" }
                dl.props {
                    dt { "Account ID" } dd { (a.id) }
                    dt { "Subscription tier" } dd #tier { (tier[..1].to_uppercase()) (tier[1..]) }
                    dt { "Data-hosting region" } dd #region { (region) }
                    dt { "Created" } dd { (when(a.created_at)) }
                }
                p.muted { "The tier is set by the operator of this kontor installation." }
                p { a #data-hosting href="/app/settings/account/data-hosting" { "Data hosting" } ": where the data lives, and moving it to another region." }
            }
        },
    )
}

pub async fn account(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    Ok(account_view(
        &c,
        &c.account.name,
        &Errors::default(),
        notice(&q),
    ))
}

pub async fn update_account(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<AccountForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let name = f.name.trim();
    if name == c.account.name {
        return Ok(Redirect::to("/app/settings/account?done=unchanged").into_response());
    }
    if let Err(e) = state.dir.rename_account(c.id(), name).await {
        let mut errors = Errors::default();
        let status = place_error(e, &[], "name", &mut errors)?;
        return Ok(reply(status, account_view(&c, &f.name, &errors, html! {})));
    }
    log_action(
        &c,
        "account.rename",
        &format!("account:{}", c.id()),
        json!({"from": c.account.name, "to": name}),
    )
    .await?;
    Ok(Redirect::to("/app/settings/account?done=renamed").into_response())
}

// ---- audit log ----
