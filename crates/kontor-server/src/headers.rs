//! Headers every response carries: the request's correlation id, and those that make sure no
//! page can be framed, sniffed into another type, cached by a shared or back-button cache, or
//! made to run script it did not ship with.
//!
//! The console is served with a strict Content-Security-Policy: scripts and styles only from
//! `/app/assets`, no inline script or style, no plugins, forms only to this server, and never
//! inside a frame. A handler that needs another policy (the SSO page, whose form leads on to
//! the identity provider; the Salesforce page, whose Connect leads on to Salesforce's login)
//! sets its own, and the default is left out.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The console's policy.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The SSO page's: the same, but its form's redirect may go to any identity provider.
pub const CSP_SSO_START: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's policy for a page whose form leads on to one other origin (the Salesforce
/// page's Connect, to the operator's Salesforce login): forms may go to this server and there.
pub fn csp_with_form_action(origin: &str) -> String {
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

/// What the handling of one request leaves for its answer's headers.
struct RequestScope {
    /// `X-HubSpot-Correlation-Id`.
    correlation_id: String,
    /// The `X-HubSpot-RateLimit-*` headers, for a token's request.
    rate: std::sync::Mutex<Option<crate::rate::Standing>>,
}

tokio::task_local! {
    static REQUEST: RequestScope;
}

/// The id of the request being handled: the one its answer also carries in
/// `X-HubSpot-Correlation-Id` and an error body in `correlationId`, which integrations log and
/// quote when they report a problem; a new one outside a request.
pub fn correlation_id() -> String {
    REQUEST
        .try_with(|r| r.correlation_id.clone())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// Sets the rate-limit headers of the answer to the request being handled.
pub fn report_rate(standing: crate::rate::Standing) {
    let _ =
        REQUEST.try_with(|r| *r.rate.lock().unwrap_or_else(|e| e.into_inner()) = Some(standing));
}

pub async fn security_headers(State(https): State<bool>, req: Request, next: Next) -> Response {
    let scope = RequestScope {
        correlation_id: uuid::Uuid::new_v4().to_string(),
        rate: Default::default(),
    };
    let id = scope.correlation_id.clone();
    let (mut resp, rate) = REQUEST
        .scope(scope, async {
            let resp = next.run(req).await;
            let rate = REQUEST.with(|r| r.rate.lock().unwrap_or_else(|e| e.into_inner()).take());
            (resp, rate)
        })
        .await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-hubspot-correlation-id", v);
    }
    if let Some(rate) = rate {
        rate.write(h);
    }
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Download links and reset links carry their secret in the path: never in a Referer.
    set(h, header::REFERRER_POLICY, "no-referrer");
    // Record data, tokens, TOTP secrets and recovery codes: nothing is stored by a cache
    // unless the handler says so (the console's assets do).
    set(h, header::CACHE_CONTROL, "no-store");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if https {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    resp
}
