//! Signing in to the console, and who a console request is.
//!
//! Sign-in takes an API token, checks it like the API does, and sets a session cookie:
//! HttpOnly, SameSite=Strict, Secure when the request came over TLS, expiring after
//! [`SESSION_HOURS`]. The cookie's value is 256 random bits; the database keeps only its
//! SHA-256 (`console_session`), so any node of the cluster knows the session and sign-out ends
//! it everywhere. The role is never stored: every request reads it from this node's settings,
//! so a token taken out of the settings signs its sessions out.
//!
//! Every form that changes something carries a CSRF token derived from the session (or, with
//! no tokens configured, from a secret of this process), and a request whose `Origin` is not
//! this server is refused, so another site cannot make a signed-in browser change anything.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ConsoleError, Page, html_with, layout, see_other};
use crate::api::{
    ApiError, ApiState, ApiToken, Caller, Role, authenticate, loopback_host, matching_token,
};

/// How long a sign-in lasts.
pub(crate) const SESSION_HOURS: i64 = 12;
/// The session cookie's name.
const COOKIE: &str = "cronmesh_session";

/// What the console keeps in memory on a node.
pub(crate) struct ConsoleState {
    /// The CSRF secret of a node without tokens (no sessions to derive it from).
    open_secret: [u8; 32],
    /// The last actor counts read and when: the actors page shows messages per second as the
    /// change since the previous read.
    pub(super) last_actor_counts:
        Mutex<Option<(std::time::Instant, std::collections::HashMap<String, u64>)>>,
}

impl ConsoleState {
    /// A fresh state with a random CSRF secret.
    pub(crate) fn new() -> Self {
        let mut open_secret = [0u8; 32];
        // Without randomness the secret is still unknown to other sites only if it is not all
        // zeros; fall back on the time and the process id, which another site cannot read.
        if getrandom::fill(&mut open_secret).is_err() {
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            open_secret = Sha256::digest(seed.as_bytes()).into();
        }
        ConsoleState {
            open_secret,
            last_actor_counts: Mutex::new(None),
        }
    }
}

/// Who is looking at a console page, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
    /// The CSRF token of this session.
    pub(crate) csrf: String,
    /// Whether there is a session to sign out of (false with no tokens configured).
    pub(crate) signed_in: bool,
    /// The zone to show times in besides each task's own: the browser's (a cookie the
    /// script sets), else UTC.
    pub(crate) zone: chrono_tz::Tz,
}

impl Viewer {
    /// Whether the viewer's role is at least `role` (what a page shows).
    pub(crate) fn may(&self, role: Role) -> bool {
        self.caller.role >= role
    }

    /// Refuses a changing request that another site sent, or whose form's CSRF token is not
    /// this session's (403): what every form that changes something must pass first.
    pub(crate) fn check_form(&self, req: &HttpRequest, csrf: &str) -> Result<(), ConsoleError> {
        check_origin(req)?;
        self.check_csrf(csrf)
    }

    /// Refuses a form whose CSRF token is not this session's (403).
    pub(crate) fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        if bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "the form's CSRF token is missing or not this session's; reload the page and try again"
                    .to_owned(),
            )
            .into())
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The CSRF token of a session cookie value (or of the open secret).
fn csrf_of(secret: &[u8]) -> String {
    let mut input = b"cronmesh-csrf:".to_vec();
    input.extend_from_slice(secret);
    sha256_hex(&input)
}

/// What ties a session to a token's current secret: the SHA-256 of its configured SHA-256.
fn fingerprint(token: &ApiToken) -> String {
    sha256_hex(token.sha256())
}

/// The viewer's zone from the `cronmesh_tz` cookie, else UTC.
fn viewer_zone(req: &HttpRequest) -> chrono_tz::Tz {
    req.cookie("cronmesh_tz")
        .and_then(|c| c.value().parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Refuses a state-changing request that another site sent: its `Origin`, when the browser
/// gives one, must name this server's host and port (the scheme is not compared: behind a
/// proxy that terminates TLS the browser says `https` and this server sees `http`).
fn check_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return Ok(());
    };
    // Host names without case, and a port left out meaning the scheme's default.
    let normal = |host: &str, scheme: &str| {
        let host = host.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        host.strip_suffix(default)
            .map(str::to_owned)
            .unwrap_or(host)
    };
    let info = req.connection_info();
    let from = origin
        .split_once("://")
        .map(|(scheme, host)| normal(host, &scheme.to_ascii_lowercase()));
    let served = [normal(info.host(), "http"), normal(info.host(), "https")];
    if from.is_some_and(|from| served.contains(&from)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a form from {} may not change anything here",
            scheduler_core::quoted(origin)
        ))
        .into())
    }
}

async fn find_viewer(req: HttpRequest) -> Result<Viewer, ConsoleError> {
    let (Some(api), Some(console)) = (
        req.app_data::<web::Data<ApiState>>(),
        req.app_data::<web::Data<ConsoleState>>(),
    ) else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the console is not set up on this server",
        )
        .into());
    };
    let zone = viewer_zone(&req);
    if api.tokens.is_empty() {
        if !loopback_host(&req) {
            return Err(ApiError::forbidden(
                "with no [[http.tokens]] configured the console answers only requests to a loopback name (localhost, 127.0.0.1, [::1])"
                    .to_owned(),
            )
            .into());
        }
        let caller = authenticate(&[], None)?;
        return Ok(Viewer {
            caller,
            csrf: csrf_of(&console.open_secret),
            signed_in: false,
            zone,
        });
    }
    // After signing in, back to the page asked for; a form's target is no page to go back to.
    let sign_in = || ConsoleError::SignIn {
        next: if req.method() == actix_web::http::Method::GET {
            req.uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned())
        } else {
            "/".to_owned()
        },
    };
    let Some(cookie) = req.cookie(COOKIE) else {
        return Err(sign_in());
    };
    let session = store::find_session(&api.db, &sha256_hex(cookie.value().as_bytes()), Utc::now())
        .await?
        .ok_or_else(sign_in)?;
    let token = api
        .tokens
        .iter()
        .find(|t| t.name == session.token_name && fingerprint(t) == session.token_fingerprint)
        .ok_or_else(sign_in)?;
    Ok(Viewer {
        caller: Caller {
            name: token.name.clone(),
            role: token.role,
        },
        csrf: csrf_of(cookie.value().as_bytes()),
        signed_in: true,
        zone,
    })
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Viewer, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        Box::pin(find_viewer(req.clone()))
    }
}

/// Where to go after a form: a path on this server, nothing else. A second `/` or a backslash
/// (which browsers read as `/`) would name another host, and browsers drop tabs and newlines
/// before reading a URL, so any control character, space or backslash is refused outright.
pub(super) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p[1..].starts_with('/')
                && !p.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

fn login_page(status: StatusCode, next: &str, problem: Option<&str>) -> HttpResponse {
    let body = html! {
        main.narrow {
            h1 { "Sign in to cronmesh" }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                p.hint { "A token from the node's settings (" code { "[[http.tokens]]" } "), as " code { "cronmesh token create" } " printed it. What you may do follows its role." }
                button type="submit" { "Sign in" }
            }
        }
    };
    html_with(status, layout::bare("Sign in", body))
}

pub(super) async fn login_form(api: web::Data<ApiState>, query: web::Query<Next>) -> HttpResponse {
    let next = local_path(query.next.as_deref());
    if api.tokens.is_empty() {
        return see_other(&next);
    }
    login_page(StatusCode::OK, &next, None)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

pub(super) async fn login(
    req: HttpRequest,
    api: web::Data<ApiState>,
    form: web::Form<LoginForm>,
) -> Page {
    check_origin(&req)?;
    let next = local_path(form.next.as_deref());
    if api.tokens.is_empty() {
        return Ok(see_other(&next));
    }
    let Some(token) = matching_token(&api.tokens, form.token.trim()) else {
        tracing::info!(target: "cron_task", "console sign-in refused: unknown token");
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not one this node knows. Check it and try again."),
        ));
    };
    // A session this browser had before ends: one sign-in, one session.
    if let Some(old) = req.cookie(COOKIE) {
        store::end_session(&api.db, &sha256_hex(old.value().as_bytes())).await?;
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("no randomness for a session: {e}"),
        )
    })?;
    let value = hex::encode(raw);
    let now = Utc::now();
    store::create_session(
        &api.db,
        &sha256_hex(value.as_bytes()),
        &token.name,
        &fingerprint(token),
        now,
        now + chrono::Duration::hours(SESSION_HOURS),
    )
    .await?;
    tracing::info!(target: "cron_task", token = %token.name, "console sign-in");
    let secure = req.connection_info().scheme() == "https";
    let cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::hours(SESSION_HOURS))
        .finish();
    let mut response = see_other(&next);
    response
        .add_cookie(&cookie)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn logout(
    req: HttpRequest,
    viewer: Viewer,
    api: web::Data<ApiState>,
    form: web::Form<CsrfForm>,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    if let Some(cookie) = req.cookie(COOKIE) {
        store::end_session(&api.db, &sha256_hex(cookie.value().as_bytes())).await?;
    }
    let mut gone = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    gone.make_removal();
    let mut response = see_other(if viewer.signed_in { "/login" } else { "/" });
    response
        .add_cookie(&gone)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/tasks/a.b?x=1")), "/tasks/a.b?x=1");
        for bad in [
            "https://example.invalid/",
            "//example.invalid/",
            "/\\example.invalid",
            "/\t/example.invalid",
            "/\n/example.invalid",
            "/ /example.invalid",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let viewer = Viewer {
            caller: Caller {
                name: "ops".to_owned(),
                role: Role::Operator,
            },
            csrf: csrf_of(b"session-one"),
            signed_in: true,
            zone: chrono_tz::UTC,
        };
        assert!(viewer.check_csrf(&csrf_of(b"session-one")).is_ok());
        assert!(viewer.check_csrf(&csrf_of(b"session-two")).is_err());
        assert!(viewer.check_csrf("").is_err());
    }
}
