//! `http`: one HTTP request; the run fails on a transport error or an unexpected status.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::parse_args;
use super::shell::OUTPUT_TAIL_BYTES;
use crate::tasks::handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};

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
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            let url = store::redact_url(&self.url);
            format!("handler_args for `http`: url {url:?}: {e}")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "handler_args for `http`: url {:?} must be http:// or https://",
                store::redact_url(&self.url)
            ));
        }
        if self.timeout_secs == Some(0) {
            return Err(
                "handler_args for `http`: timeout_secs 0 would fail every request; give at least 1"
                    .to_owned(),
            );
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
                // The client's own error repeats the URL, credentials and all: say it once, redacted.
                r = req.send() => r.map_err(|e| TaskFailure::new(format!("request to {} failed: {}", store::redact_url(&args.url), e.without_url())))?,
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
                    message: format!(
                        "{} answered {status}, expected {expected}",
                        store::redact_url(&args.url)
                    ),
                    output,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-connection-at-a-time server answering every request with `status` and `body`.
    fn serve(status: &'static str, body: &'static str, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        format!("http://{addr}/hook")
    }

    fn ctx(args: serde_json::Value) -> TaskContext {
        TaskContext::for_test("t.http", chrono::Utc::now(), Default::default()).with_args(args)
    }

    #[tokio::test]
    async fn success_failure_and_expected_status() {
        let handler = HttpHandler::new();
        let ok = serve("200 OK", "all good", 1);
        let out = handler
            .run(ctx(
                serde_json::json!({"url": ok, "method": "post", "body": "x"}),
            ))
            .await;
        assert_eq!(out.map(|o| o.output), Ok(Some("all good".to_owned())));

        let down = serve("503 Service Unavailable", "try later", 1);
        let err = handler
            .run(ctx(serde_json::json!({"url": down})))
            .await
            .expect_err("503 fails");
        assert!(
            err.message.contains("503") && err.message.contains("expected 2xx"),
            "{}",
            err.message
        );
        assert_eq!(err.output.as_deref(), Some("try later"));

        let created = serve("200 OK", "", 1);
        let err = handler
            .run(ctx(
                serde_json::json!({"url": created, "expect_status": 201}),
            ))
            .await
            .expect_err("200 is not 201");
        assert!(err.message.contains("expected 201"), "{}", err.message);

        let refused = format!(
            "http://{}/",
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("addr")
        );
        let err = handler
            .run(ctx(serde_json::json!({"url": refused})))
            .await
            .expect_err("nothing listens");
        assert!(err.message.contains("failed"), "{}", err.message);
    }

    #[tokio::test]
    async fn credentials_in_the_url_never_reach_an_error() {
        let handler = HttpHandler::new();
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("addr");
        let refused = format!("http://ops:hunter2@{closed}/hook?token=t0ken&x=1");
        let err = handler
            .run(ctx(serde_json::json!({"url": refused})))
            .await
            .expect_err("nothing listens");
        let down =
            serve("500 Internal Server Error", "", 1).replace("http://", "http://ops:hunter2@");
        let answered = handler
            .run(ctx(
                serde_json::json!({"url": format!("{down}?password=p4ss")}),
            ))
            .await
            .expect_err("500 fails");
        for message in [err.message, answered.message] {
            for secret in ["hunter2", "t0ken", "p4ss"] {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(message.contains("ops:***@"), "{message}");
        }
        let bad = super::super::validate_handler_args(
            "http",
            Some(&serde_json::json!({"url": "http://ops:hunter2@127.0.0.1:notaport/"})),
            &|_| false,
        )
        .expect_err("bad port");
        assert!(!bad.contains("hunter2"), "{bad}");
    }
}
