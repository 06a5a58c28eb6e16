//! The admin HTTP server (actix-web): liveness and readiness (no token), Prometheus metrics
//! (no token unless `http.metrics_public = false`), actor metrics and what the scheduler
//! holds (`/api/actors`, `/api/tasks`: a viewer token when tokens are configured), and the
//! operations API under `/api/v1` (`api/`), and the web console at `/` (`console/`).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::metrics::{Metered, Metrics};
use crate::scheduler::{ListScheduled, SchedulerActor};

struct AdminState {
    metrics: Arc<Metrics>,
    scheduler: Metered<SchedulerActor>,
    node_id: String,
}

/// Starts the server on an already bound listener, on the current actix System.
pub(crate) fn start(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    scheduler: Metered<SchedulerActor>,
    node_id: String,
    api: crate::api::ApiState,
) -> std::io::Result<ServerHandle> {
    let state = web::Data::new(AdminState {
        metrics,
        scheduler,
        node_id,
    });
    let api = web::Data::new(api);
    let console = web::Data::new(crate::console::ConsoleState::new());
    let server = HttpServer::new(move || {
        App::new()
            // No page of this server may be framed by another (clickjacking), sniffed into
            // another type, or load anything from elsewhere.
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add(("X-Frame-Options", "DENY"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add((
                        "Content-Security-Policy",
                        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
                    ))
                    .add(("Referrer-Policy", "same-origin")),
            )
            .app_data(state.clone())
            .app_data(api.clone())
            .app_data(console.clone())
            .configure(crate::api::routes)
            .configure(crate::console::routes)
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(prometheus))
            .route("/api/actors", web::get().to(actors))
            .route("/api/tasks", web::get().to(tasks))
            .default_service(web::to(crate::console::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?;
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "admin HTTP server failed");
        }
    });
    Ok(handle)
}

/// Liveness, with the cluster pause when the database answers (it never makes this fail).
async fn healthz(
    state: web::Data<AdminState>,
    api: web::Data<crate::api::ApiState>,
) -> HttpResponse {
    // Whether and why, not who: a token's name is not for everyone.
    let cluster = store::cluster_pause(&api.db)
        .await
        .ok()
        .map(|c| serde_json::json!({"paused": c.paused, "reason": c.reason}));
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "node": state.node_id,
        "cluster": cluster,
    }))
}

/// Readiness: the database answers and the lock backend is reachable (503 naming what is not).
async fn readyz(
    state: web::Data<AdminState>,
    api: web::Data<crate::api::ApiState>,
) -> HttpResponse {
    let database = store::cluster_pause(&api.db).await.is_ok();
    let lock = !state.metrics.degraded();
    let body = serde_json::json!({
        "status": if database && lock { "ready" } else { "not_ready" },
        "node": state.node_id,
        "database": if database { "ok" } else { "unreachable" },
        "lock": if lock { "ok" } else { "unreachable" },
    });
    if database && lock {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text; with `http.metrics_public = false` it needs a viewer token.
async fn prometheus(
    state: web::Data<AdminState>,
    api: web::Data<crate::api::ApiState>,
    req: actix_web::HttpRequest,
) -> actix_web::Result<HttpResponse> {
    if !api.metrics_public {
        viewer(&req, &api)?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.prometheus()))
}

/// A viewer token, when tokens are configured.
fn viewer(req: &actix_web::HttpRequest, api: &crate::api::ApiState) -> actix_web::Result<()> {
    crate::api::caller_of(req, &api.tokens)?;
    Ok(())
}

async fn actors(
    state: web::Data<AdminState>,
    api: web::Data<crate::api::ApiState>,
    req: actix_web::HttpRequest,
) -> actix_web::Result<HttpResponse> {
    viewer(&req, &api)?;
    Ok(HttpResponse::Ok().json(state.metrics.snapshot()))
}

async fn tasks(
    state: web::Data<AdminState>,
    api: web::Data<crate::api::ApiState>,
    req: actix_web::HttpRequest,
) -> actix_web::Result<HttpResponse> {
    viewer(&req, &api)?;
    Ok(match state.scheduler.send(ListScheduled).await {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": e.to_string()}))
        }
    })
}
