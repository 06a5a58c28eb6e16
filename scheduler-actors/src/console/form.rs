//! The task form as the browser sends it, and how it becomes the API's own request body
//! (`NewTask` for a new task, `TaskPatch` for an edit) without touching what was not changed.

use serde::Deserialize;
use serde_json::{Value, json};

use super::editor::PreviewQuery;
use crate::api::ApiError;

/// The form's fields, as text (what the browser sends).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct TaskForm {
    pub(super) csrf: String,
    pub(super) version: Option<i64>,
    pub(super) name: String,
    pub(super) handler: String,
    pub(super) handler_args: String,
    /// The handler args as the form showed them (secrets redacted): sent back unchanged, they
    /// are left as stored.
    pub(super) args_shown: String,
    /// The trigger fields and the handler as the edit form showed them: sent back unchanged,
    /// they are not written (so an edit of the description does not mark a code task's
    /// schedule as set by an operator).
    pub(super) trigger_shown: String,
    pub(super) handler_shown: String,
    pub(super) mode: String,
    pub(super) expr: String,
    pub(super) timezone: String,
    pub(super) trigger_json: String,
    pub(super) trigger_conf: String,
    /// The preview starts at this date (not saved; to check a schedule around a DST change).
    pub(super) preview_from: String,
    pub(super) owner: String,
    pub(super) description: String,
    pub(super) timeout_secs: String,
    pub(super) misfire: String,
    pub(super) fire_all_max: String,
    pub(super) misfire_grace_secs: String,
    pub(super) overlap: String,
    pub(super) recover: Option<String>,
    pub(super) enabled: Option<String>,
    /// The task's own alert routes, comma-separated.
    pub(super) alert_routes: String,
    /// The dead-man check, seconds (empty: off).
    pub(super) alert_if_no_success_for_secs: String,
    pub(super) action: String,
}

impl TaskForm {
    /// A task's current values, for the edit form.
    pub(super) fn of(task: &store::StoredTask) -> Self {
        let r = &task.row;
        let shown = task.to_json()["handler_args"].clone();
        let shown = if shown.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        };
        let (mode, expr, timezone, trigger_json) = match (&task.conf_name, &r.trigger_json) {
            (Some(_), _) => ("conf", String::new(), "UTC".to_owned(), String::new()),
            (None, Some(json)) => {
                let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let simple_cron = value["type"] == "cron"
                    && value.get("start_at").is_none_or(Value::is_null)
                    && value.get("end_at").is_none_or(Value::is_null);
                if simple_cron {
                    (
                        "cron",
                        value["expr"].as_str().unwrap_or_default().to_owned(),
                        value["timezone"].as_str().unwrap_or("UTC").to_owned(),
                        String::new(),
                    )
                } else {
                    ("json", String::new(), "UTC".to_owned(), json.clone())
                }
            }
            (None, None) => ("cron", String::new(), "UTC".to_owned(), String::new()),
        };
        let (misfire, fire_all_max) = match r.misfire.split_once(':') {
            Some((policy, max)) => (policy.to_owned(), max.to_owned()),
            None => (r.misfire.clone(), String::new()),
        };
        let mut form = TaskForm {
            version: Some(r.version),
            name: r.name.clone(),
            handler: r.handler.clone(),
            handler_shown: r.handler.clone(),
            handler_args: shown.clone(),
            args_shown: shown,
            mode: mode.to_owned(),
            expr,
            timezone,
            trigger_json,
            trigger_conf: task.conf_name.clone().unwrap_or_default(),
            owner: r.owner.clone(),
            description: r.description.clone(),
            timeout_secs: r
                .timeout_ms
                .map(|ms| (ms.max(0) as u64).div_ceil(1000).to_string())
                .unwrap_or_default(),
            misfire,
            fire_all_max,
            misfire_grace_secs: (r.misfire_grace_ms.max(0) / 1000).to_string(),
            overlap: r.overlap.clone(),
            recover: r.recover.then(|| "on".to_owned()),
            enabled: r.enabled.then(|| "on".to_owned()),
            alert_routes: task.decl().alert_routes.join(", "),
            alert_if_no_success_for_secs: r
                .alert_if_no_success_for_ms
                .map(|ms| (ms / 1000).to_string())
                .unwrap_or_default(),
            ..TaskForm::default()
        };
        form.trigger_shown = form.trigger_fields();
        form
    }

    /// The trigger as the form's fields say it, in one string (to tell whether it changed). A
    /// JSON array, never a raw newline: browsers send every newline in a field as CRLF.
    pub(super) fn trigger_fields(&self) -> String {
        let json = normalise_newlines(&self.trigger_json);
        let fields = match self.mode.as_str() {
            "cron" => [self.mode.as_str(), self.expr.trim(), self.timezone.trim()],
            "json" => [self.mode.as_str(), json.as_str(), ""],
            other => [other, self.trigger_conf.trim(), ""],
        };
        serde_json::to_string(&fields).unwrap_or_default()
    }

    /// The fields of a new task before anything is typed.
    pub(super) fn blank() -> Self {
        TaskForm {
            handler: "shell".to_owned(),
            mode: "cron".to_owned(),
            timezone: "UTC".to_owned(),
            misfire: "fire_once".to_owned(),
            misfire_grace_secs: "60".to_owned(),
            overlap: "forbid".to_owned(),
            enabled: Some("on".to_owned()),
            ..TaskForm::default()
        }
    }

    /// The preview request of the trigger fields.
    pub(super) fn preview_request(&self) -> PreviewQuery {
        PreviewQuery {
            mode: self.mode.clone(),
            expr: self.expr.clone(),
            timezone: self.timezone.clone(),
            trigger_json: self.trigger_json.clone(),
            trigger_conf: self.trigger_conf.clone(),
            preview_from: self.preview_from.clone(),
        }
    }

    /// The request body the API would take, with the fields this form sets. `editing` leaves
    /// out what cannot change (the name) and what was not touched (redacted handler args).
    pub(super) fn body(&self, editing: bool) -> Result<Value, ApiError> {
        let mut body = serde_json::Map::new();
        let trigger_changed = !editing || self.trigger_fields() != self.trigger_shown;
        match self.mode.as_str() {
            _ if !trigger_changed => {}
            "cron" => {
                let zone = self.timezone.trim();
                body.insert(
                    "trigger".into(),
                    json!({"type": "cron", "expr": self.expr.trim(), "timezone": if zone.is_empty() { "UTC" } else { zone }}),
                );
            }
            "json" => {
                let value: Value = serde_json::from_str(&self.trigger_json).map_err(|e| {
                    ApiError::invalid(format!("the trigger JSON is not JSON: {e}"))
                        .on("trigger_json")
                })?;
                body.insert("trigger".into(), value);
            }
            "conf" => {
                body.insert("trigger_conf".into(), json!(self.trigger_conf.trim()));
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "trigger kind {} is not cron, json or conf",
                    scheduler_core::quoted(other)
                ))
                .on("mode"));
            }
        }
        if !editing {
            body.insert("name".into(), json!(self.name.trim()));
            body.insert("enabled".into(), json!(self.enabled.is_some()));
        }
        if !(editing && self.handler == self.handler_shown) {
            body.insert("handler".into(), json!(self.handler.trim()));
        }
        let args = normalise_newlines(&self.handler_args);
        let args = args.as_str();
        if !(editing && args == normalise_newlines(&self.args_shown)) {
            // Secrets are shown as `***` (a whole value, or a password or token inside a URL):
            // saved as they are, the real ones would be lost.
            if editing && args.contains("***") {
                return Err(ApiError::invalid(
                    "the handler args still hold *** where a secret was: type each secret again, or leave the args exactly as shown to keep the stored ones",
                )
                .on("handler_args"));
            }
            let value = if args.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(args).map_err(|e| {
                    ApiError::invalid(format!("the handler args are not JSON: {e}"))
                        .on("handler_args")
                })?
            };
            body.insert("handler_args".into(), value);
        }
        body.insert("owner".into(), json!(self.owner));
        body.insert("description".into(), json!(self.description));
        if let Some(ms) = seconds_ms(&self.timeout_secs, "timeout_secs")? {
            body.insert("timeout_ms".into(), json!(ms));
        }
        if let Some(ms) = seconds_ms(&self.misfire_grace_secs, "misfire_grace_secs")? {
            body.insert("misfire_grace_ms".into(), json!(ms));
        }
        let misfire = match (self.misfire.as_str(), self.fire_all_max.trim()) {
            ("fire_all", max) if !max.is_empty() => format!("fire_all:{max}"),
            (policy, _) => policy.to_owned(),
        };
        body.insert("misfire".into(), json!(misfire));
        body.insert("overlap".into(), json!(self.overlap));
        body.insert("recover".into(), json!(self.recover.is_some()));
        let routes: Vec<&str> = self
            .alert_routes
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect();
        body.insert("alert_routes".into(), json!(routes));
        // Empty turns the check off (0 in the API).
        let silence = seconds_ms(
            &self.alert_if_no_success_for_secs,
            "alert_if_no_success_for_secs",
        )?
        .map_or(0, |ms| ms / 1000);
        body.insert("alert_if_no_success_for_secs".into(), json!(silence));
        Ok(Value::Object(body))
    }
}

/// Whole seconds typed in a form field, as milliseconds (`None` when left empty).
fn seconds_ms(text: &str, field: &str) -> Result<Option<u64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{field} {} is not a whole number of seconds",
                scheduler_core::quoted(text)
            ))
            .on(field)
        })
}

/// A field's text with browser line ends (CRLF) as plain newlines, trimmed.
fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NewTask, TaskPatch};

    #[test]
    fn a_form_becomes_the_apis_request_body() {
        let form = TaskForm {
            name: "web.ping".to_owned(),
            expr: "30 2 * * *".to_owned(),
            timezone: "America/New_York".to_owned(),
            handler_args: r#"{"url":"http://127.0.0.1:9/"}"#.to_owned(),
            timeout_secs: "30".to_owned(),
            fire_all_max: "5".to_owned(),
            misfire: "fire_all".to_owned(),
            ..TaskForm::blank()
        };
        let body = form.body(false).expect("valid");
        assert_eq!(body["trigger"]["timezone"], "America/New_York");
        assert_eq!(body["timeout_ms"], 30_000);
        assert_eq!(body["misfire"], "fire_all:5");
        assert!(serde_json::from_value::<NewTask>(body).is_ok());

        // Redacted args sent back unchanged are left out of an edit.
        let edit = TaskForm {
            handler_args: "{\"token\":\"***\"}".to_owned(),
            args_shown: "{\"token\":\"***\"}".to_owned(),
            ..form.clone()
        };
        let patch = edit.body(true).expect("valid");
        assert!(patch.get("handler_args").is_none() && patch.get("name").is_none());
        assert!(serde_json::from_value::<TaskPatch>(patch).is_ok());
        // Browsers send line ends as CRLF: pretty-printed args sent back untouched are untouched.
        let crlf = TaskForm {
            handler_args: "{\r\n  \"token\": \"***\"\r\n}".to_owned(),
            args_shown: "{\n  \"token\": \"***\"\n}".to_owned(),
            ..edit.clone()
        };
        assert!(
            crlf.body(true)
                .expect("valid")
                .get("handler_args")
                .is_none()
        );
        // Changed args that still hold a redacted secret are refused, not saved as "***".
        let half = TaskForm {
            handler_args: "{\"token\":\"***\",\"x\":1}".to_owned(),
            ..edit.clone()
        };
        assert_eq!(
            half.body(true).expect_err("refused").field(),
            Some("handler_args")
        );
        // An untouched trigger and handler are not sent: nothing to override.
        let untouched = TaskForm {
            trigger_shown: edit.trigger_fields(),
            handler_shown: edit.handler.clone(),
            ..edit.clone()
        };
        let patch = untouched.body(true).expect("valid");
        assert!(
            patch.get("trigger").is_none() && patch.get("handler").is_none(),
            "{patch}"
        );
        let moved = TaskForm {
            expr: "0 4 * * *".to_owned(),
            ..untouched
        };
        assert_eq!(
            moved.body(true).expect("valid")["trigger"]["expr"],
            "0 4 * * *"
        );

        let bad = TaskForm {
            timeout_secs: "ten".to_owned(),
            ..form
        };
        let err = bad.body(false).expect_err("refused");
        assert_eq!(err.field(), Some("timeout_secs"));
        assert!(err.to_string().contains("\"ten\""), "{err}");
    }
}
