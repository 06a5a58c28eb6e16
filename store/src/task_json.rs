//! A task as people and programs read it: `tasks show`, the API and the audit trail, with
//! the secrets in its handler arguments redacted.

use crate::tasks::{StoredTask, is_built_in};

/// Names of handler-argument keys whose values are secrets (compared without case, as parts
/// of the key: `Authorization`, `X-Api-Key`, `password`, `client_secret`, ...).
const SECRET_KEYS: [&str; 6] = [
    "authorization",
    "token",
    "password",
    "secret",
    "api-key",
    "apikey",
];

/// Handler arguments for display: the value of every key that names a secret is `***`, and
/// every URL has its password and secret query values redacted. What is stored is unchanged.
pub(crate) fn redacted_args(args: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match args {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let value = if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                        Value::String("***".to_owned())
                    } else {
                        redacted_args(v)
                    };
                    (k.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted_args).collect()),
        Value::String(s) if s.contains("://") => Value::String(crate::redact_urls_in(s)),
        other => other.clone(),
    }
}

impl StoredTask {
    /// The task as `tasks show`, the API and the audit trail show it (secrets in its handler
    /// arguments redacted).
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.row;
        serde_json::json!({
            "name": r.name,
            "module": r.module,
            "handler": r.handler,
            "handler_args": r.handler_args.as_ref().map(redacted_args),
            "trigger_conf": self.conf_name,
            "trigger": r.trigger_json.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()),
            "enabled": r.enabled,
            "owner": r.owner,
            "description": r.description,
            "timeout_ms": r.timeout_ms,
            "misfire": r.misfire,
            "misfire_grace_ms": r.misfire_grace_ms,
            "overlap": r.overlap,
            "recover": r.recover,
            "lock_ttl_ms": r.lock_ttl_ms,
            "source": r.source,
            "builtin": is_built_in(&r.name),
            "orphaned": r.orphaned,
            "schedule_overridden": r.schedule_overridden,
            "alert_routes": r.alert_routes.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()).unwrap_or_else(|| serde_json::json!([])),
            "alert_if_no_success_for_secs": r.alert_if_no_success_for_ms.map(|ms| ms / 1000),
            "shadow": r.shadow,
            "cutover_at": r.cutover_at.filter(|_| r.shadow).map(scheduler_core::rfc3339),
            "next_run_at": r.next_run_at.map(scheduler_core::rfc3339),
            "last_run_at": r.last_run_at.map(scheduler_core::rfc3339),
            "last_status": r.last_status,
            "version": r.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_handler_args_are_shown_redacted() {
        let args = serde_json::json!({
            "url": "https://u:pw@127.0.0.1/hook?token=abc&x=1",
            "headers": {"Authorization": "Bearer t0k", "X-Api-Key": "k3y", "Accept": "json"},
            "env": {"DB_PASSWORD": "p", "MODE": "fast"},
            "args": ["--to", "https://v:pw2@127.0.0.1/"],
            "timeout_secs": 5,
        });
        let shown = redacted_args(&args).to_string();
        for secret in ["pw@", "abc", "t0k", "k3y", "\"p\"", "pw2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for kept in ["json", "fast", "--to", "timeout_secs", "127.0.0.1/hook"] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
    }
}
