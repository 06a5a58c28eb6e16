//! Who calls the API: bearer tokens from the settings (only their SHA-256 is kept), each with
//! a role; a request is allowed what its role allows.

use std::str::FromStr;

use actix_web::{FromRequest, HttpRequest, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// What a token may do. Each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Every `GET`.
    Viewer,
    /// Also run now, enable/disable, and the cluster pause.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Its name in the settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role {} is not viewer, operator or admin",
                scheduler_core::quoted(other)
            )),
        }
    }
}

/// One API token as configured: its name (shown in the audit trail), its role, and the
/// SHA-256 of the token (the token itself is never stored).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    sha256: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    /// A token from the settings; `sha256_hex` is the hex SHA-256 of the token.
    pub fn new(name: &str, role: Role, sha256_hex: &str) -> Result<Self, String> {
        if name.trim().is_empty() {
            return Err("a token needs a name".to_owned());
        }
        let bytes = hex::decode(sha256_hex.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                format!(
                    "token_sha256 of token {} is not 64 hexadecimal digits (the SHA-256 of the token, as `cronmesh token create` prints it)",
                    scheduler_core::quoted(name)
                )
            })?;
        Ok(ApiToken {
            name: name.to_owned(),
            role,
            sha256: bytes,
        })
    }
}

impl ApiToken {
    /// The SHA-256 of the token, as configured.
    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
}

/// The hex SHA-256 of a token, as the settings hold it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token (256 bits from the operating system).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    Ok(format!("cm_{}", hex::encode(bytes)))
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The token's name (`local` with no tokens configured).
    pub(crate) name: String,
    pub(crate) role: Role,
}

impl Caller {
    /// Refuses (403) unless the caller's role is at least `role`.
    pub(crate) fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; token {} has {}",
                role.as_str(),
                scheduler_core::quoted(&self.name),
                self.role.as_str()
            )))
        }
    }

    /// The actor the audit trail records.
    pub(crate) fn who(&self) -> store::Who {
        store::Who::new(format!("token:{}", self.name))
    }
}

/// Finds the caller of a request from its `Authorization: Bearer` header. With no tokens
/// configured (a node on loopback), every caller is the admin `local`. Every configured token
/// is compared, in constant time, so timing says nothing about which exist.
pub(crate) fn authenticate(tokens: &[ApiToken], header: Option<&str>) -> Result<Caller, ApiError> {
    if tokens.is_empty() {
        return Ok(Caller {
            name: "local".to_owned(),
            role: Role::Admin,
        });
    }
    let presented = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    matching_token(tokens, presented)
        .map(|t| Caller {
            name: t.name.clone(),
            role: t.role,
        })
        .ok_or_else(ApiError::unauthorized)
}

/// The configured token `presented` is, if any. Every configured token is compared, in
/// constant time, so timing says nothing about which exist.
pub(crate) fn matching_token<'a>(tokens: &'a [ApiToken], presented: &str) -> Option<&'a ApiToken> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found: Option<&ApiToken> = None;
    for token in tokens {
        if bool::from(token.sha256.ct_eq(&digest)) {
            found = Some(token);
        }
    }
    found
}

/// Whether a request came to this machine by a loopback name: its `Host` header (the one the
/// browser sends, not a forwarding header, which a page could set) is `localhost`, a loopback
/// address or `[::1]`, and no forwarding header names anything else. A node without tokens
/// answers only such requests: a web page whose own name was pointed at 127.0.0.1 (DNS
/// rebinding) arrives with its own name as the host and is turned away.
pub(crate) fn loopback_host(req: &HttpRequest) -> bool {
    use actix_web::http::header;
    let headers = req.headers();
    if headers.contains_key(header::FORWARDED)
        || headers.contains_key("x-forwarded-host")
        || headers.contains_key("x-forwarded-for")
    {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The caller of a request, from its `Authorization` header (see [`authenticate`]). With no
/// tokens configured, only a request by a loopback name (see [`loopback_host`]) is let in.
pub(crate) fn caller_of(req: &HttpRequest, tokens: &[ApiToken]) -> Result<Caller, ApiError> {
    if tokens.is_empty() && !loopback_host(req) {
        return Err(ApiError::forbidden(
            "with no [[http.tokens]] configured this node answers only requests to a loopback name (localhost, 127.0.0.1, [::1])"
                .to_owned(),
        ));
    }
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate(tokens, header)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let tokens = req
            .app_data::<web::Data<super::ApiState>>()
            .map(|s| s.tokens.clone())
            .unwrap_or_default();
        std::future::ready(caller_of(req, &tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_known_token_is_let_in_with_its_role() {
        let token = "cm_secret";
        let tokens = [
            ApiToken::new("ops", Role::Operator, &token_sha256(token)).expect("token"),
            ApiToken::new("ro", Role::Viewer, &token_sha256("other")).expect("token"),
        ];
        let caller = authenticate(&tokens, Some("Bearer cm_secret")).expect("known");
        assert_eq!((caller.name.as_str(), caller.role), ("ops", Role::Operator));
        assert!(caller.require(Role::Viewer).is_ok());
        assert!(caller.require(Role::Admin).is_err());
        for header in [
            None,
            Some("Bearer nope"),
            Some("cm_secret"),
            Some("Basic x"),
        ] {
            let err = authenticate(&tokens, header).expect_err("refused");
            assert_eq!(actix_web::ResponseError::status_code(&err).as_u16(), 401);
        }
        // Without tokens (loopback only) everyone is the local admin.
        assert_eq!(authenticate(&[], None).expect("open").role, Role::Admin);
        assert!(ApiToken::new("x", Role::Admin, "abc").is_err());
        assert_eq!(new_token().expect("random").len(), 3 + 64);
    }
}
