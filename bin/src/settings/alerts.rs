//! `[alerts]`: where alerts go (`[[alerts.routes]]`), the console's address for links, and how
//! deliveries are retried. Each route is checked by `AlertRoute::from_spec`, whose error names
//! the key.

use std::time::Duration;

use scheduler_actors::alerts::{AlertConfig, AlertRoute, AlertRouteSpec, RetryPolicy};
use serde::Deserialize;

/// `[alerts]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAlerts {
    console_url: Option<String>,
    routes: Option<Vec<AlertRouteSpec>>,
    /// Attempts per alert (default 4).
    retry_attempts: Option<u32>,
    /// The wait after the first failed attempt, doubled each time (default 1000).
    retry_backoff_ms: Option<u64>,
    /// One attempt's limit (default 10).
    timeout_secs: Option<u64>,
}

/// The checked alert settings, or what is wrong, starting with the key.
pub(super) fn alert_config(raw: RawAlerts) -> Result<AlertConfig, String> {
    let console_url = match raw.console_url.filter(|u| !u.trim().is_empty()) {
        None => None,
        Some(u) => {
            let parsed = reqwest::Url::parse(u.trim()).map_err(|e| {
                format!(
                    "`alerts.console_url`: {} is not a URL ({e})",
                    scheduler_core::quoted(&u)
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "`alerts.console_url`: {} is not an http or https URL",
                    scheduler_core::quoted(&u)
                ));
            }
            Some(u.trim().trim_end_matches('/').to_owned())
        }
    };
    let mut routes: Vec<AlertRoute> = Vec::new();
    for (i, spec) in raw.routes.unwrap_or_default().into_iter().enumerate() {
        let key = format!("alerts.routes[{i}]");
        let route = AlertRoute::from_spec(&key, spec)?;
        if routes.iter().any(|r| r.name == route.name) {
            return Err(format!(
                "`{key}.name`: a second route named {}",
                scheduler_core::quoted(&route.name)
            ));
        }
        routes.push(route);
    }
    let defaults = RetryPolicy::default();
    let attempts = raw.retry_attempts.unwrap_or(defaults.attempts);
    if !(1..=10).contains(&attempts) {
        return Err(format!("`alerts.retry_attempts`: {attempts}; give 1 to 10"));
    }
    let backoff = raw
        .retry_backoff_ms
        .map_or(defaults.first_backoff, Duration::from_millis);
    if backoff > Duration::from_secs(60) {
        return Err(format!(
            "`alerts.retry_backoff_ms`: {} ms is more than a minute (waits double up to a minute)",
            backoff.as_millis()
        ));
    }
    let timeout = raw
        .timeout_secs
        .map_or(defaults.timeout, Duration::from_secs);
    if timeout.is_zero() || timeout > Duration::from_secs(120) {
        return Err(format!(
            "`alerts.timeout_secs`: {} s; give 1 to 120",
            timeout.as_secs()
        ));
    }
    Ok(AlertConfig {
        console_url,
        routes,
        retry: RetryPolicy {
            attempts,
            first_backoff: backoff,
            timeout,
        },
    })
}
