//! `http`: one HTTP request; the run fails on a transport error or an unexpected status.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::parse_args;
use super::shell::OUTPUT_TAIL_BYTES;
use crate::handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};

/// Arguments of `http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpArgs {
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// The status that means success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Request timeout (default 30 s; the task's own timeout still applies).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl HttpArgs {
    fn method(&self) -> Result<reqwest::Method, String> {
        let m = self.method.as_deref().unwrap_or("GET");
        reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("handler_args for `http`: method {m:?} is not an HTTP method"))
    }

    pub(crate) fn validate(self) -> Result<(), String> {
        self.method()?;
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("handler_args for `http`: url {:?}: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "handler_args for `http`: url {:?} must be http:// or https://",
                self.url
            ));
        }
        if let Some(s) = self.expect_status
            && !(100..=599).contains(&s)
        {
            return Err(format!(
                "handler_args for `http`: expect_status {s} is not an HTTP status"
            ));
        }
        for (k, v) in &self.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("handler_args for `http`: header name {k:?} is invalid"))?;
            reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                format!("handler_args for `http`: header {k:?} has an invalid value")
            })?;
        }
        Ok(())
    }
}

/// The `http` handler (one shared connection pool).
#[derive(Debug, Clone, Default)]
pub struct HttpHandler {
    client: reqwest::Client,
}

impl HttpHandler {
    /// A handler with its own client.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TaskHandler for HttpHandler {
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        let client = self.client.clone();
        Box::pin(async move {
            let args: HttpArgs = parse_args("http", ctx.args.as_ref()).map_err(TaskFailure::new)?;
            let method = args.method().map_err(TaskFailure::new)?;
            let mut req = client
                .request(method, &args.url)
                .timeout(Duration::from_secs(args.timeout_secs.unwrap_or(30)))
                .header("x-cronmesh-task", &ctx.task)
                .header("x-cronmesh-run-id", &ctx.run_id);
            for (k, v) in &args.headers {
                req = req.header(k, v);
            }
            if let Some(body) = &args.body {
                req = req.body(body.clone());
            }
            let resp = tokio::select! {
                r = req.send() => r.map_err(|e| TaskFailure::new(format!("request to {} failed: {e}", args.url)))?,
                () = ctx.cancel.cancelled() => return Err(TaskFailure::new("request cancelled")),
            };
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let output = (!body.is_empty()).then(|| {
                let start = body.len().saturating_sub(OUTPUT_TAIL_BYTES);
                let start = (start..body.len())
                    .find(|i| body.is_char_boundary(*i))
                    .unwrap_or(body.len());
                body[start..].to_owned()
            });
            let ok = match args.expect_status {
                Some(expected) => status.as_u16() == expected,
                None => status.is_success(),
            };
            if ok {
                Ok(TaskOutput { output })
            } else {
                let expected = args
                    .expect_status
                    .map_or_else(|| "2xx".to_owned(), |s| s.to_string());
                Err(TaskFailure {
                    message: format!("{} answered {status}, expected {expected}", args.url),
                    output,
                })
            }
        })
    }
}
