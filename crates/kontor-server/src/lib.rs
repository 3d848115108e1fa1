#![doc = include_str!("../README.md")]

mod account_info;
mod associations;
mod auth;
pub mod backups;
mod console;
mod engagements;
mod error;
mod forms;
mod headers;
mod imports;
mod legacy;
mod lifecycle;
mod lists;
mod merge;
mod migrations;
mod objects;
mod oidc;
mod owners;
mod params;
mod pipelines;
mod properties;
pub mod rate;
mod restores;
pub mod salesforce;
mod schemas;
pub mod seal;
mod throttle;
pub mod webhooks;
mod wire;

pub use error::ApiError;
pub use throttle::ClientLimiter;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use kontor_store::Directory;
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// Largest request body accepted (413 beyond): a 100-input batch with long values fits.
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub dir: Arc<Directory>,
    /// Mark cookies `Secure` (set when the console is served over HTTPS).
    pub cookie_secure: bool,
    /// Background jobs (backups): file stores, signed links, mail.
    pub jobs: Arc<kontor_jobs::Jobs>,
    /// Sign-in requests per client address.
    pub sign_in_limiter: Arc<ClientLimiter>,
    /// Form submissions (no token) per client address.
    pub submission_limiter: Arc<ClientLimiter>,
    /// API requests per token and account.
    pub api_limiter: Arc<rate::ApiLimiter>,
    /// Where webhooks may be sent, and how they are retried.
    pub webhooks: Arc<webhooks::Policy>,
    /// The operator's connected app in Salesforce, for the integration.
    pub salesforce: Arc<salesforce::Policy>,
}

/// A router that remembers the paths it serves, so that the permission matrix test can hold
/// every route to an expectation (`route_paths`).
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }
    pub fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.paths.push(path);
        self.router = self.router.route(path, method_router);
        self
    }
    pub fn merge(mut self, other: Routes) -> Self {
        self.paths.extend(other.paths);
        self.router = self.router.merge(other.router);
        self
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

/// Every path the server routes, as registered (with `{param}` placeholders).
pub fn route_paths() -> Vec<&'static str> {
    routes().paths
}

/// The router: every route, the body limit, and the deadline for a whole request (body
/// included; answered 408), all beneath the security headers, which every answer carries.
pub fn router(state: AppState, body_limit: usize, request_timeout: Duration) -> Router {
    let https = state.cookie_secure;
    routes()
        .router
        .fallback(not_served)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("the server failed to handle this request").into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            https,
            headers::security_headers,
        ))
        .with_state(state)
}

fn routes() -> Routes {
    let objects = Routes::new()
        .route(
            "/crm/v3/objects/{object_type}",
            get(objects::list).post(objects::create),
        )
        .route(
            "/crm/v3/objects/{object_type}/search",
            post(objects::search),
        )
        .route("/crm/v3/objects/{object_type}/merge", post(merge::merge))
        .route(
            "/crm/v3/objects/{object_type}/gdpr-delete",
            post(merge::gdpr_delete),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/read",
            post(objects::batch_read),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/create",
            post(objects::batch_create),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/update",
            post(objects::batch_update),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/upsert",
            post(objects::batch_upsert),
        )
        .route(
            "/crm/v3/objects/{object_type}/batch/archive",
            post(objects::batch_archive),
        )
        .route(
            "/crm/v3/objects/{object_type}/{id}",
            get(objects::get_one)
                .patch(objects::update)
                .delete(objects::archive),
        )
        .route(
            "/crm/v3/properties/{object_type}",
            get(properties::list).post(properties::create),
        )
        .route(
            "/crm/v3/properties/{object_type}/batch/read",
            post(properties::batch_read),
        )
        .route(
            "/crm/v3/properties/{object_type}/batch/create",
            post(properties::batch_create),
        )
        .route(
            "/crm/v3/properties/{object_type}/batch/archive",
            post(properties::batch_archive),
        )
        .route(
            "/crm/v3/properties/{object_type}/groups",
            get(properties::groups).post(properties::create_group),
        )
        .route(
            "/crm/v3/properties/{object_type}/groups/{name}",
            get(properties::get_group)
                .patch(properties::update_group)
                .delete(properties::archive_group),
        )
        .route(
            "/crm/v3/properties/{object_type}/{name}",
            get(properties::get_one)
                .patch(properties::update)
                .delete(properties::archive),
        )
        // HubSpot serves the schemas API under both prefixes; sync tools look for custom
        // objects under the second.
        .merge(schemas::routes([
            "/crm-object-schemas/v3/schemas",
            "/crm-object-schemas/v3/schemas/{object_type}",
            "/crm-object-schemas/v3/schemas/{object_type}/associations",
            "/crm-object-schemas/v3/schemas/{object_type}/associations/{association}",
        ]))
        .merge(schemas::routes([
            "/crm/v3/schemas",
            "/crm/v3/schemas/{object_type}",
            "/crm/v3/schemas/{object_type}/associations",
            "/crm/v3/schemas/{object_type}/associations/{association}",
        ]))
        .route(
            "/properties/v2/{object_type}/properties",
            get(legacy::properties),
        )
        .route(
            "/properties/v2/{object_type}/properties/named/{name}",
            get(legacy::property_named),
        )
        .route("/properties/v2/{object_type}/groups", get(legacy::groups))
        .route("/engagements/v1/engagements/paged", get(engagements::paged))
        .route(
            "/engagements/v1/engagements/{id}",
            get(engagements::get_one)
                .put(engagements::not_served)
                .patch(engagements::not_served)
                .delete(engagements::not_served),
        )
        .route("/contacts/v1/lists", get(lists::list))
        .route("/contacts/v1/lists/{id}", get(lists::get_one))
        .route(
            "/crm/v3/pipelines/{object_type}",
            get(pipelines::list).post(pipelines::create),
        )
        .route(
            "/crm/v3/pipelines/{object_type}/{id}",
            get(pipelines::get_one)
                .put(pipelines::replace)
                .patch(pipelines::patch)
                .delete(pipelines::archive),
        )
        .route(
            "/crm/v3/pipelines/{object_type}/{id}/stages",
            get(pipelines::stages).post(pipelines::create_stage),
        )
        .route(
            "/crm/v3/pipelines/{object_type}/{id}/stages/{stage}",
            get(pipelines::stage)
                .put(pipelines::replace_stage)
                .patch(pipelines::patch_stage)
                .delete(pipelines::archive_stage),
        )
        .route(
            "/crm-pipelines/v1/pipelines/{object_type}",
            get(pipelines::list_v1),
        )
        .route("/account-info/v3/details", get(account_info::details))
        .route(
            "/account-info/v3/api-usage/daily/private-apps",
            get(account_info::daily_usage),
        )
        .route("/integrations/v1/me", get(account_info::me))
        .route("/crm/v3/owners", get(owners::list))
        .route("/crm/v3/owners/{id}", get(owners::get_one))
        .route(
            "/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}",
            put(associations::create_default),
        )
        .route(
            "/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}",
            put(associations::create_labelled).delete(associations::archive_pair),
        )
        .route(
            "/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}",
            get(associations::get_page),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/create",
            post(associations::v4_batch_create),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/associate/default",
            post(associations::v4_batch_default),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/read",
            post(associations::v4_batch_read),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/archive",
            post(associations::v4_batch_archive),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/batch/labels/archive",
            post(associations::v4_batch_labels_archive),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/labels",
            get(associations::labels)
                .post(associations::create_label)
                .put(associations::update_label),
        )
        .route(
            "/crm/v4/associations/{from_type}/{to_type}/labels/{type_id}",
            delete(associations::delete_label),
        )
        .route(
            "/crm/v3/associations/{from_type}/{to_type}/batch/create",
            post(associations::v3_batch_create),
        )
        .route(
            "/crm/v3/associations/{from_type}/{to_type}/batch/read",
            post(associations::v3_batch_read),
        )
        .route(
            "/crm/v3/associations/{from_type}/{to_type}/batch/archive",
            post(associations::v3_batch_archive),
        )
        .route(
            "/crm/v3/associations/{from_type}/{to_type}/types",
            get(associations::v3_types),
        )
        .route(
            "/webhooks/v3/{app_id}/settings",
            get(webhooks::get_settings)
                .put(webhooks::put_settings)
                .delete(webhooks::clear_settings),
        )
        .route(
            "/webhooks/v3/{app_id}/subscriptions",
            get(webhooks::list_subscriptions).post(webhooks::create_subscription),
        )
        .route(
            "/webhooks/v3/{app_id}/subscriptions/batch/update",
            post(webhooks::batch_update),
        )
        .route(
            "/webhooks/v3/{app_id}/subscriptions/{subscription_id}",
            get(webhooks::get_subscription)
                .patch(webhooks::patch_subscription)
                .delete(webhooks::delete_subscription),
        )
        .route(
            "/kontor/v1/webhooks/apps",
            get(webhooks::list_apps).post(webhooks::create_app),
        )
        .route(
            "/kontor/v1/webhooks/apps/{app_id}",
            get(webhooks::get_app).delete(webhooks::delete_app),
        )
        .route(
            "/kontor/v1/webhooks/apps/{app_id}/events",
            get(webhooks::list_events),
        )
        .route(
            "/kontor/v1/webhooks/apps/{app_id}/events/retry",
            post(webhooks::retry_failed),
        )
        .route(
            "/kontor/v1/integrations/salesforce",
            get(salesforce::api::status).patch(salesforce::api::patch_settings),
        )
        .route(
            "/kontor/v1/integrations/salesforce/pause",
            post(salesforce::api::pause),
        )
        .route(
            "/kontor/v1/integrations/salesforce/resume",
            post(salesforce::api::resume),
        )
        .route(
            "/kontor/v1/integrations/salesforce/sync",
            post(salesforce::api::sync_now),
        )
        .route(
            "/kontor/v1/integrations/salesforce/errors",
            get(salesforce::api::errors),
        )
        .route(
            "/kontor/v1/integrations/salesforce/errors/retry",
            post(salesforce::api::retry),
        )
        .route(
            "/kontor/v1/integrations/salesforce/mappings",
            get(salesforce::api::mappings),
        )
        .route(
            "/kontor/v1/integrations/salesforce/mappings/{sf_type}/{field}",
            axum::routing::put(salesforce::api::put_mapping)
                .delete(salesforce::api::delete_mapping),
        )
        .route(
            "/kontor/v1/integrations/salesforce/uninstall",
            get(salesforce::uninstall::get_uninstall).post(salesforce::uninstall::post_uninstall),
        )
        .route(
            "/kontor/v1/integrations/salesforce/uninstall/{id}",
            get(salesforce::uninstall::get_uninstall_one),
        )
        .route(
            "/kontor/v1/integrations/salesforce/owners",
            get(salesforce::uninstall::get_owners),
        )
        .route(
            "/kontor/v1/integrations/salesforce/owners/reassign",
            post(salesforce::uninstall::post_reassign),
        )
        .route(
            "/kontor/v1/integrations/salesforce/owners/reassignments/{id}",
            get(salesforce::uninstall::get_reassignment),
        )
        .route(
            "/kontor/v1/integrations/salesforce/owners/reassignments/{id}/revert",
            post(salesforce::uninstall::post_revert),
        )
        .route(
            "/kontor/v1/integrations/salesforce/owners/remove",
            post(salesforce::uninstall::post_remove),
        );
    objects
        .merge(console::routes())
        .route("/healthz", get(healthz))
        .route(
            "/kontor/v1/backups",
            get(backups::list).post(backups::create),
        )
        .route("/kontor/v1/backups/{id}", get(backups::get_one))
        .route(
            "/kontor/v1/backups/{id}/download-link",
            get(backups::download_link),
        )
        .route("/kontor/v1/backups/{id}/download", get(backups::download))
        .route(
            "/crm/v3/imports",
            get(imports::list)
                .post(imports::create)
                .layer(DefaultBodyLimit::max(
                    // The file, plus room for the request and the multipart framing.
                    kontor_jobs::import::MAX_FILE_BYTES + (1 << 20),
                )),
        )
        .route("/crm/v3/imports/{id}", get(imports::get_one))
        .route("/crm/v3/imports/{id}/cancel", post(imports::cancel))
        .route("/crm/v3/imports/{id}/errors", get(imports::errors))
        .route(
            "/kontor/v1/restores",
            get(restores::list).post(restores::apply),
        )
        .route("/kontor/v1/restores/plans", post(restores::plan))
        .route("/kontor/v1/restores/plans/{id}", get(restores::get_plan))
        .route("/kontor/v1/restores/{id}", get(restores::get_one))
        .route("/kontor/v1/restores/{id}/revert", post(restores::revert))
        .route(
            "/kontor/v1/migrations",
            get(migrations::list).post(migrations::schedule),
        )
        .route(
            "/kontor/v1/migrations/{id}",
            get(migrations::get_one)
                .patch(migrations::reschedule)
                .delete(migrations::cancel),
        )
        .route("/marketing/v3/forms", get(forms::list).post(forms::create))
        .route(
            "/marketing/v3/forms/{id}",
            get(forms::get_one)
                .patch(forms::update)
                .delete(forms::archive),
        )
        .route(
            "/submissions/v3/integration/submit/{portal}/{guid}",
            post(forms::submit).options(forms::submit_preflight),
        )
        .route(
            "/form-integrations/v1/submissions/forms/{guid}",
            get(forms::submissions),
        )
}

/// The router behind a layer that drops a trailing slash before routing (the official
/// clients call `/crm/v3/owners/` and `/crm/v3/imports/`).
pub fn app(
    state: AppState,
    body_limit: usize,
    request_timeout: Duration,
) -> tower_http::normalize_path::NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(state, body_limit, request_timeout))
}

async fn healthz(State(state): State<AppState>) -> Response {
    let mut ok = state.dir.directory.ping().await.is_ok();
    for store in state.dir.regions.values() {
        ok &= store.ping().await.is_ok();
    }
    // A job runner that panicked and has not come back means no backups, imports or
    // notifications: the node is not healthy even though it answers requests.
    let jobs = state.jobs.health.status();
    if ok && jobs == "ok" {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "jobs": jobs})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "jobs": jobs})),
        )
            .into_response()
    }
}

/// A path no route serves: the console's own "not found" page under `/app`, and elsewhere 501
/// with HubSpot's error body, naming what is not served, so that a client (or the person
/// reading its log) knows the endpoint is missing here rather than the object it asked for.
async fn not_served(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if uri.path() == "/app" || uri.path().starts_with("/app/") {
        console::PageError::not_found().into_response()
    } else {
        let path: String = uri.path().chars().take(200).collect();
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NOT_IMPLEMENTED",
            format!(
                "kontor does not serve {method} {path}; docs/api-compatibility.md lists the endpoints it serves"
            ),
        )
        .into_response()
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this method is not allowed on this resource",
    )
}
