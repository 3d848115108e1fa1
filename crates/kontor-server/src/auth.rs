//! Bearer-token authentication: the token names its account, the directory names the
//! account's cell, and the cell checks the token's hash.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use kontor_store::{token_account, Account, Actor, ObjectType, Store, Token};

/// The authenticated caller of a CRM API request.
pub struct Ctx {
    pub account: Account,
    pub store: Store,
    pub token: Token,
}

impl Ctx {
    pub fn id(&self) -> i64 {
        self.account.id
    }
    pub fn actor(&self) -> Actor {
        Actor::api(&self.token.name)
    }
    /// Passes if the token was made by an admin (or by the operator); 403 otherwise, saying
    /// that only admins can do `what` ("manage webhooks").
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        use kontor_domain::Role;
        match self.token.created_role {
            None | Some(Role::SuperAdmin) | Some(Role::Admin) => Ok(()),
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "MISSING_SCOPES",
                format!("Only admins can {what}; this token was made by a user who is not one."),
            )),
        }
    }

    /// Records an action of this token in the account's audit log.
    pub async fn audit(
        &self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.store
            .audit(
                self.id(),
                None,
                &format!("token:{}", self.token.name),
                action,
                target,
                details,
            )
            .await?;
        Ok(())
    }

    /// Resolves `{objectType}`; unknown types get HubSpot's 400.
    pub async fn object_type(&self, name: &str) -> Result<ObjectType, ApiError> {
        self.store
            .object_type(self.id(), name)
            .await?
            .ok_or_else(|| ApiError::unknown_object_type(name))
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let bearer = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim);
        // HubSpot's clients call the webhooks API with a developer key in the query string.
        let hapikey = (bearer.is_none() && parts.uri.path().starts_with("/webhooks/"))
            .then(|| hapikey(parts.uri.query().unwrap_or("")))
            .flatten();
        let token = bearer.or(hapikey.as_deref()).unwrap_or("");
        let account_id = token_account(token).ok_or_else(ApiError::unauthorized)?;
        let account = state
            .dir
            .account(account_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let store = state.dir.cell(&account)?.clone();
        let token = store
            .verify_token(account.id, token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        crate::lifecycle::admit(&account)?;
        let search =
            parts.method == axum::http::Method::POST && parts.uri.path().ends_with("/search");
        match state.api_limiter.admit(
            account.id,
            account.tier,
            token.id,
            search,
            std::time::Instant::now(),
            kontor_domain::time::now_ms(),
        ) {
            Ok(Some(standing)) => crate::headers::report_rate(standing),
            Ok(None) => {}
            Err(refusal) => {
                crate::headers::report_rate(refusal.standing);
                return Err(ApiError::rate_limited(refusal));
            }
        }
        Ok(Ctx {
            account,
            store,
            token,
        })
    }
}

/// The `hapikey` query parameter.
fn hapikey(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "hapikey")
        .map(|(_, v)| v.into_owned())
}
