//! The OpenAPI 3 document, generated from the handlers' annotations.

use super::{admin, error, list, ops, records};
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "leadflow", description = "Lead lifecycles over HTTP: records, transitions, actors, workflow versions. Errors are `{code, message}` with stable codes."),
    paths(
        records::create, records::get, records::fire, records::actions, records::history, records::links,
        list::list,
        admin::list, admin::get, admin::get_unavailability, admin::put_unavailability, admin::workflows,
        ops::healthz, ops::readyz, ops::metrics_text,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /openapi.json`
pub async fn json() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}
