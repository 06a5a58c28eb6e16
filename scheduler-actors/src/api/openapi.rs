//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations and the request types' derives.

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::{ErrorBody, ErrorDetail};
use super::{alerts, confs, reads, tasks};

/// The bearer-token scheme every operation uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cronmesh operations API",
        description = "Tasks, trigger confs, runs, nodes, the cluster pause and the audit trail of a cronmesh cluster. Every node serves it."
    ),
    paths(
        tasks::list_tasks,
        tasks::create_task,
        tasks::get_task,
        tasks::patch_task,
        tasks::delete_task,
        tasks::run_task,
        tasks::cutover_task,
        alerts::deliveries,
        confs::list,
        confs::create,
        confs::get,
        confs::replace,
        confs::remove,
        reads::list_runs,
        reads::get_run,
        reads::nodes,
        reads::actors,
        reads::preview,
        super::pause,
        super::resume,
        super::audit,
    ),
    components(schemas(ErrorBody, ErrorDetail, crate::alerts::JsonPayload)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(super) async fn document() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_served_is_in_the_document_and_nothing_else() {
        let doc = serde_json::to_value(openapi()).expect("the document is JSON");
        assert!(
            doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = 0;
        for (method, path) in super::super::ROUTES {
            let full = format!("/api/v1{path}");
            let operation = &paths
                .get(&full)
                .unwrap_or_else(|| panic!("{full} is served but not in the OpenAPI document"))
                [*method];
            assert!(
                operation.is_object(),
                "{method} {full} is served but not documented"
            );
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {full}: 401"
            );
            documented += 1;
        }
        let in_doc: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(
            in_doc, documented,
            "the document has operations nothing serves"
        );
    }
}
