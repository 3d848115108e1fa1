//! Settings → Single sign-on: the account's OpenID provider. Super admins only; every change
//! is audited (without the client secret, which is sealed with the server's key and never
//! shown again).

use super::*;
use crate::console::sso::redirect_uri;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::{oidc, seal, AppState};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::Role;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SsoForm {
    issuer: String,
    client_id: String,
    client_secret: String,
    domains: String,
    required: Option<String>,
    action: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn view(
    c: &Console,
    state: &AppState,
    f: &SsoForm,
    has_secret: bool,
    configured: bool,
    errors: &Errors,
    top: Markup,
) -> Markup {
    c.page(
        "Single sign-on",
        "/app/settings/sso",
        html! {
            h1 { "Single sign-on" }
            (top)
            section.card aria-labelledby="sso-provider" {
                h2 #sso-provider { "OpenID Connect provider" }
                p { "Users of the allowed domains can sign in through your identity provider. They are matched by their verified e-mail address to existing users of this account; nobody is created." }
                p { "Register this redirect URI with the provider: " code #redirect-uri { (redirect_uri(state)) } }
                form method="post" action="/app/settings/sso" {
                    (csrf(c))
                    (input("issuer", "Issuer URL", "url", &f.issuer, Some("For example https://login.example.com. It must use HTTPS."), true, errors))
                    (input("client_id", "Client ID", "text", &f.client_id, None, true, errors))
                    (input("client_secret", "Client secret", "password", "",
                        Some(if has_secret { "Stored encrypted and never shown again. Leave empty to keep the stored secret." } else { "Stored encrypted and never shown again." }),
                        !has_secret, errors))
                    (input("domains", "Allowed e-mail domains", "text", &f.domains, Some("Separated by commas, for example example.com, example.org."), true, errors))
                    p.check-row {
                        input #required type="checkbox" name="required" value="on" checked[f.required.is_some()] aria-describedby="required-hint";
                        " "
                        label.inline for="required" { "Require single sign-on" }
                    }
                    p.muted.check-hint #required-hint {
                        "Password sign-in is then refused for everyone in this account except super admins, so that an outage of the provider cannot lock everyone out."
                    }
                    p { button type="submit" name="action" value="save" { "Save" } }
                }
                @if configured {
                    form method="post" action="/app/settings/sso" {
                        (csrf(c))
                        p { button.secondary type="submit" name="action" value="remove" { "Turn off single sign-on" } }
                    }
                }
            }
        },
    )
}

pub async fn sso(
    State(state): State<AppState>,
    c: Console,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::SuperAdmin)?;
    let cfg = c.store.sso_config(c.id()).await?;
    let f = cfg
        .as_ref()
        .map(|cfg| SsoForm {
            issuer: cfg.issuer.clone(),
            client_id: cfg.client_id.clone(),
            domains: cfg.domains.join(", "),
            required: cfg.required.then(|| "on".into()),
            ..SsoForm::default()
        })
        .unwrap_or_default();
    Ok(view(
        &c,
        &state,
        &f,
        cfg.is_some(),
        cfg.is_some(),
        &Errors::default(),
        notice(&q),
    ))
}

fn parse_domains(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for d in raw
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|d| !d.is_empty())
    {
        let d = d.trim_start_matches('@').to_lowercase();
        let valid = d.contains('.')
            && !d.starts_with('.')
            && !d.ends_with('.')
            && d.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.');
        if !valid {
            return Err(format!("“{d}” is not a domain name."));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.is_empty() {
        return Err("Name at least one e-mail domain.".into());
    }
    Ok(out)
}

pub async fn update_sso(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<SsoForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let existing = c.store.sso_config(c.id()).await?;
    if f.action == "remove" {
        if existing.is_some() {
            c.store.delete_sso_config(c.id()).await?;
            log_action(
                &c,
                "sso.remove",
                &format!("account:{}", c.id()),
                json!({"message": "Single sign-on turned off"}),
            )
            .await?;
        }
        return Ok(Redirect::to("/app/settings/sso?done=sso-off").into_response());
    }
    let mut errors = Errors::default();
    let issuer = f.issuer.trim().to_string();
    let client_id = f.client_id.trim().to_string();
    let secret = f.client_secret.trim();
    if let Err(m) = oidc::check_url(&issuer) {
        errors.add("issuer", m);
    } else if let Err(m) = oidc::discover(&issuer).await {
        // Checked now, so a typo shows here rather than on every user's sign-in.
        errors.add("issuer", m);
    }
    if client_id.is_empty() {
        errors.add("client_id", "Enter the client ID the provider gave.");
    }
    if secret.is_empty() && existing.is_none() {
        errors.add(
            "client_secret",
            "Enter the client secret the provider gave.",
        );
    }
    let domains = match parse_domains(&f.domains) {
        Ok(d) => d,
        Err(m) => {
            errors.add("domains", m);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        let has = existing.is_some();
        return Ok(reply(
            axum::http::StatusCode::BAD_REQUEST,
            view(&c, &state, &f, has, has, &errors, html! {}),
        ));
    }
    let sealed = (!secret.is_empty()).then(|| seal::seal(&state.jobs.keys, secret.as_bytes()));
    let required = f.required.is_some();
    c.store
        .set_sso_config(
            c.id(),
            Some(c.session.user.id),
            &kontor_store::SsoConfig {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                client_secret_sealed: sealed.clone().unwrap_or_default(),
                domains: domains.clone(),
                required,
                updated_at: 0,
            },
        )
        .await?;
    log_action(
        &c,
        "sso.update",
        &format!("account:{}", c.id()),
        json!({
            "issuer": issuer,
            "client_id": client_id,
            "domains": domains,
            "required": required,
            "secret_changed": sealed.is_some(),
        }),
    )
    .await?;
    Ok(Redirect::to("/app/settings/sso?done=sso").into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_domains;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(
            parse_domains("Example.com, @example.org example.com").unwrap(),
            vec!["example.com", "example.org"]
        );
        assert!(parse_domains("").is_err());
        assert!(parse_domains("localhost").is_err());
        assert!(parse_domains("a@b.com").is_err());
    }
}
