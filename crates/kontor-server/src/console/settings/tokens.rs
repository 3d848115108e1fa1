use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::Role;
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    name: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

async fn tokens_view(
    c: &Console,
    name: &str,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let tokens = c.store.tokens(c.id()).await?;
    Ok(c.page(
        "Private apps & tokens",
        "/app/settings/tokens",
        html! {
            h1 { "Private apps & tokens" }
            (top)
            p.muted { "A token lets another program use this account's data through the API. Revoke the ones you no longer use." }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Revoke" } } }
                tbody {
                    @for t in &tokens {
                        tr id=(format!("token-{}", t.id)) {
                            td { (t.name) }
                            td { (when(t.created_at)) }
                            td { @match t.revoked_at { Some(at) => { "Revoked " (when(at)) }, None => { "Live" } } }
                            td {
                                @if t.revoked_at.is_none() && !t.revocable_by(c.role()) {
                                    span.muted { "A super admin's token" }
                                } @else if t.revoked_at.is_none() {
                                    form method="post" action=(format!("/app/settings/tokens/{}/revoke", t.id)) {
                                        (csrf(c))
                                        button.danger type="submit" aria-label=(format!("Revoke {}", t.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if tokens.is_empty() { p.muted { "No tokens yet." } }
            section.card aria-labelledby="create-token" {
                h2 #create-token { "Create a token" }
                form method="post" action="/app/settings/tokens" {
                    (csrf(c))
                    (input("name", "Name", "text", name, Some("What the token is for, such as the program that uses it."), true, errors))
                    p { button type="submit" { "Create token" } }
                }
            }
        },
    ))
}

pub async fn tokens(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    tokens_view(&c, "", &Errors::default(), notice(&q)).await
}

pub async fn create_token(c: Console, Form(f): Form<TokenForm>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    // The store writes the token.create audit entry itself.
    match c
        .store
        .create_token(c.id(), &f.name, Some(c.session.user.id))
        .await
    {
        Ok((token, secret)) => {
            let top = html! {
                div.flash role="status" {
                    p { "Token " strong { (token.name) } " created. Copy it now: it will not be shown again." }
                    p.secret #new-token { (secret) }
                }
            };
            Ok(tokens_view(&c, "", &Errors::default(), top)
                .await?
                .into_response())
        }
        Err(e) => {
            let mut errors = Errors::default();
            let status = place_error(e, &[("name", "name")], "name", &mut errors)?;
            Ok(reply(
                status,
                tokens_view(&c, &f.name, &errors, html! {}).await?,
            ))
        }
    }
}

pub async fn revoke_token(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let token = c
        .store
        .tokens(c.id())
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(PageError::not_found)?;
    if !token.revocable_by(c.role()) {
        return Err(PageError::new(
            axum::http::StatusCode::FORBIDDEN,
            "Not allowed",
            "This token was made by a super admin (or the operator); only a super admin can revoke it.",
        ));
    }
    if token.revoked_at.is_some() {
        return Ok(Redirect::to("/app/settings/tokens?done=unchanged"));
    }
    // The store writes the token.revoke audit entry itself.
    c.store
        .revoke_token(c.id(), id, Some(c.session.user.id))
        .await?;
    Ok(Redirect::to("/app/settings/tokens?done=revoked"))
}

// ---- properties ----
