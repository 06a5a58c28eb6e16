//! The web console, served by every node's admin server at `/`: server-rendered HTML (maud)
//! that works without JavaScript, plus a little script for the live parts (auto-refresh, the
//! trigger preview as you type), which fetch server-rendered fragments of the same pages.
//!
//! It reads and changes through the same functions as the `/api/v1` routes (`crate::api`), so
//! a change from the console is validated, authorised and audited exactly like one from the
//! API. Signing in takes an API token and gives a session cookie (`session.rs`); every form
//! that changes something carries a CSRF token. With no tokens configured (a node on
//! loopback) there is no sign-in and everyone is the local admin.
//!
//! Rooms: `session.rs` (sign-in, sessions, CSRF), `layout.rs` (the page around every page,
//! times and statuses), `tasks.rs` (the tasks table, a task and its actions), `editor.rs`
//! (create and edit pages, the trigger preview), `form.rs` (the form and its request body), `pages.rs` (confs, runs, nodes, actors,
//! audit, the cluster pause).

mod alerts;
mod editor;
mod fires;
mod form;
mod layout;
mod pages;
mod session;
mod tasks;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::api::ApiError;

pub(crate) use self::session::{ConsoleState, Viewer};

/// Registers the console's routes.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(crate::api::MAX_BODY)
            .error_handler(|e, _| {
                ConsoleError::Api(ApiError::invalid(format!(
                    "the form could not be read: {e}"
                )))
                .into()
            }),
    )
    .route("/", web::get().to(tasks::list))
    .route("/login", web::get().to(session::login_form))
    .route("/login", web::post().to(session::login))
    .route("/logout", web::post().to(session::logout))
    .route("/console.css", web::get().to(layout::css))
    .route("/console.js", web::get().to(layout::js))
    .route("/tasks/new", web::get().to(editor::new_form))
    .route("/tasks/new", web::post().to(editor::create))
    .route("/tasks/{name}", web::get().to(tasks::show))
    .route("/tasks/{name}/edit", web::get().to(editor::edit_form))
    .route("/tasks/{name}/edit", web::post().to(editor::update))
    .route("/tasks/{name}/run", web::post().to(tasks::run))
    .route("/tasks/{name}/enabled", web::post().to(tasks::set_enabled))
    .route("/tasks/{name}/delete", web::get().to(tasks::confirm_delete))
    .route("/tasks/{name}/delete", web::post().to(tasks::delete))
    .route("/preview", web::get().to(editor::preview))
    .route("/confs", web::get().to(pages::confs))
    .route("/runs", web::get().to(pages::runs))
    .route("/runs/{run_id}", web::get().to(pages::run))
    .route("/nodes", web::get().to(pages::nodes))
    .route("/actors", web::get().to(pages::actors))
    .route("/audit", web::get().to(pages::audit))
    .route("/alerts", web::get().to(alerts::list))
    .route("/cluster", web::get().to(pages::cluster))
    .route("/cluster", web::post().to(pages::set_cluster));
}

/// What went wrong, as a console page: the API's error (status and message, the field it is
/// about), or a redirect to sign in.
#[derive(Debug)]
pub(crate) enum ConsoleError {
    /// Not signed in: go to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// Anything else, shown on a page of its own with its status.
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<store::StoreError> for ConsoleError {
    fn from(e: store::StoreError) -> Self {
        ConsoleError::Api(ApiError::from(e))
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::SignIn { .. } => f.write_str("sign in first"),
            ConsoleError::Api(e) => write!(f, "{e}"),
        }
    }
}

impl actix_web::ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn { next } => HttpResponse::SeeOther()
                .insert_header((
                    actix_web::http::header::LOCATION,
                    format!("/login?next={}", layout::url_encode(next)),
                ))
                .finish(),
            ConsoleError::Api(e) => {
                let status = e.status_code();
                let body = layout::error_page(status, &e.to_string());
                HttpResponse::build(status)
                    .content_type("text/html; charset=utf-8")
                    .body(body.into_string())
            }
        }
    }
}

/// Any path nothing else serves: a page saying so.
pub(crate) async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    let message = format!("there is no page at {}", scheduler_core::quoted(req.path()));
    html_with(
        StatusCode::NOT_FOUND,
        layout::error_page(StatusCode::NOT_FOUND, &message),
    )
}

/// A form or query value, with an empty one meaning "not given".
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A console handler's answer.
type Page = Result<HttpResponse, ConsoleError>;

/// An HTML page with status 200.
fn html(markup: maud::Markup) -> HttpResponse {
    html_with(StatusCode::OK, markup)
}

fn html_with(status: StatusCode, markup: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// 303 to `to` (after a form that changed something, so a reload does not send it again).
fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, to.to_owned()))
        .finish()
}
