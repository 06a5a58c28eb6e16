//! One route's deliveries: a bounded queue of its own, the throttle (one alert per task per
//! `min_interval`, the rest counted into the next), retries with backoff, and a record of each
//! delivery. A route whose receiver is slow or dead only ever holds up its own queue.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use super::payload::{JsonPayload, sign, slack_body};
use super::{Alert, AlertConfig, AlertEvent, AlertFormat, AlertRoute};
use crate::metrics::Metrics;

/// Alerts waiting per route; one more is dropped (and counted).
const QUEUE: usize = 1000;

/// How a route sends: attempts, the first wait between them (doubled each time), and how long
/// one attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub attempts: u32,
    /// The wait after the first failed attempt.
    pub first_backoff: Duration,
    /// One attempt's limit.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `sent`, `failed`, `suppressed` or `dropped`.
    pub state: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// The receiver's last status.
    pub http_status: Option<u16>,
    /// Why it failed (never the URL).
    pub error: Option<String>,
}

/// What every route's sender shares.
pub(super) struct Sender {
    pub(super) db: Option<DatabaseConnection>,
    pub(super) client: reqwest::Client,
    pub(super) metrics: Arc<Metrics>,
    pub(super) console_url: Option<String>,
    pub(super) node: String,
    pub(super) retry: RetryPolicy,
    /// Alerts accepted and not yet delivered or given up (a shutdown waits for them a little).
    pub(super) outstanding: std::sync::atomic::AtomicUsize,
}

impl Sender {
    /// What the routes of `config` send with, as `node`; deliveries are recorded in `db`.
    pub(super) fn new(
        config: &AlertConfig,
        db: Option<DatabaseConnection>,
        metrics: Arc<Metrics>,
        node: &str,
    ) -> Sender {
        Sender {
            db,
            client: http_client(),
            metrics,
            console_url: config.console_url.clone(),
            node: node.to_owned(),
            retry: config.retry,
            outstanding: Default::default(),
        }
    }
}

/// An alert on its way, and who waits for how it ends (the dead-man check does).
pub(super) struct Queued {
    pub(super) alert: Alert,
    pub(super) done: Option<oneshot::Sender<Outcome>>,
}

/// A route's throttle, per task: shared by the queue (so one task's failures do not fill the
/// queue while an alert of it waits or the quiet interval runs) and the sender.
#[derive(Default)]
struct Throttle {
    /// When an alert about the task was last delivered.
    last_sent: HashMap<String, Instant>,
    /// Alerts held back since, per task.
    held_back: HashMap<String, u64>,
    /// Failure alerts about the task in the queue or being sent.
    pending: HashMap<String, usize>,
}

/// A route's queue.
#[derive(Clone)]
pub(super) struct RouteQueue {
    tx: mpsc::Sender<Queued>,
    min_interval: Duration,
    throttle: Arc<Mutex<Throttle>>,
}

/// Whether an event is ever held back: a recovery, a silence and a test never are.
fn throttles(event: AlertEvent) -> bool {
    !matches!(
        event,
        AlertEvent::Test | AlertEvent::Recovered | AlertEvent::Silent
    )
}

fn reply(done: Option<oneshot::Sender<Outcome>>, state: &'static str, error: Option<String>) {
    if let Some(done) = done {
        let _ = done.send(Outcome {
            state,
            attempts: 0,
            http_status: None,
            error,
        });
    }
}

impl RouteQueue {
    /// Starts the route's sender on `rt`.
    pub(super) fn start(
        rt: &tokio::runtime::Handle,
        route: AlertRoute,
        sender: Arc<Sender>,
    ) -> RouteQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        let throttle = Arc::new(Mutex::new(Throttle::default()));
        let min_interval = route.min_interval;
        rt.spawn(run_route(route, sender, rx, throttle.clone()));
        RouteQueue {
            tx,
            min_interval,
            throttle,
        }
    }

    /// Queues an alert; never waits. One about a task with an alert already waiting, or sent
    /// within the quiet interval, is held back (counted into the next); a full queue drops it
    /// (counted and logged).
    pub(super) fn push(&self, route: &str, sender: &Sender, queued: Queued) {
        let task = queued.alert.task.clone();
        let held = throttles(queued.alert.event) && !self.min_interval.is_zero() && {
            let mut t = self.throttle.lock().unwrap_or_else(PoisonError::into_inner);
            let waiting = t.pending.get(&task).is_some_and(|n| *n > 0);
            let quiet = t
                .last_sent
                .get(&task)
                .is_some_and(|at| at.elapsed() < self.min_interval);
            if waiting || quiet {
                *t.held_back.entry(task.clone()).or_default() += 1;
            } else {
                *t.pending.entry(task.clone()).or_default() += 1;
            }
            waiting || quiet
        };
        if held {
            sender.metrics.alert("suppressed");
            reply(queued.done, "suppressed", None);
            return;
        }
        sender.outstanding.fetch_add(1, Ordering::SeqCst);
        let counted = throttles(queued.alert.event) && !self.min_interval.is_zero();
        if let Err(e) = self.tx.try_send(queued) {
            sender.outstanding.fetch_sub(1, Ordering::SeqCst);
            if counted {
                release(&self.throttle, &task);
            }
            sender.metrics.alert("dropped");
            let queued = match e {
                mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q) => q,
            };
            tracing::warn!(target: "cronmesh::alerts", route, task = %queued.alert.task, event = queued.alert.event.as_str(), "alert dropped: the route's queue is full (its receiver is slow or down)");
            reply(
                queued.done,
                "dropped",
                Some("the route's queue is full".to_owned()),
            );
        }
    }
}

/// One failure alert about `task` left the queue.
fn release(throttle: &Mutex<Throttle>, task: &str) {
    let mut t = throttle.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = t.pending.get_mut(task) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            t.pending.remove(task);
        }
    }
}

/// The route's sender: one alert at a time, in order.
async fn run_route(
    route: AlertRoute,
    sender: Arc<Sender>,
    mut rx: mpsc::Receiver<Queued>,
    throttle: Arc<Mutex<Throttle>>,
) {
    while let Some(Queued { mut alert, done }) = rx.recv().await {
        let counted = throttles(alert.event) && !route.min_interval.is_zero();
        // Another node may have sent one within the quiet interval.
        if counted && sent_elsewhere(&route, &sender, &alert).await {
            {
                let mut t = throttle.lock().unwrap_or_else(PoisonError::into_inner);
                *t.held_back.entry(alert.task.clone()).or_default() += 1;
            }
            release(&throttle, &alert.task);
            sender.metrics.alert("suppressed");
            reply(done, "suppressed", None);
            sender.outstanding.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        if counted {
            let mut t = throttle.lock().unwrap_or_else(PoisonError::into_inner);
            alert.suppressed = t.held_back.remove(&alert.task).unwrap_or(0);
        }
        let outcome = deliver(&route, &sender, &alert).await;
        if counted {
            // Only a delivered alert starts the quiet interval: a receiver that comes back is
            // not muted for one that never reached it.
            if outcome.state == "sent" {
                let mut t = throttle.lock().unwrap_or_else(PoisonError::into_inner);
                t.last_sent.insert(alert.task.clone(), Instant::now());
            }
            release(&throttle, &alert.task);
        }
        if let Some(done) = done {
            let _ = done.send(outcome);
        }
        sender.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether any node delivered an alert of `route` about this task less than `min_interval`
/// ago (the delivery record).
async fn sent_elsewhere(route: &AlertRoute, sender: &Sender, alert: &Alert) -> bool {
    let Some(db) = &sender.db else { return false };
    match store::last_sent_at(db, &route.name, &alert.task).await {
        Ok(Some(at)) => (Utc::now() - at)
            .to_std()
            .is_ok_and(|ago| ago < route.min_interval),
        _ => false,
    }
}

/// Sends one alert with retries and records how it went.
pub(super) async fn deliver(route: &AlertRoute, sender: &Sender, alert: &Alert) -> Outcome {
    let created = Utc::now();
    let outcome = post_with_retries(route, sender, alert).await;
    match outcome.state {
        "sent" => {
            sender.metrics.alert("sent");
            tracing::info!(target: "cronmesh::alerts", route = %route.name, task = %alert.task, event = alert.event.as_str(), attempts = outcome.attempts, "alert sent");
        }
        _ => {
            sender.metrics.alert("failed");
            tracing::warn!(target: "cronmesh::alerts", route = %route.name, task = %alert.task, event = alert.event.as_str(), attempts = outcome.attempts, error = outcome.error.as_deref().unwrap_or(""), "alert not delivered");
        }
    }
    if let Some(db) = &sender.db {
        let row = entity::alert_delivery::ActiveModel {
            route: Set(route.name.clone()),
            event: Set(alert.event.as_str().to_owned()),
            task_name: Set(alert.task.clone()),
            run_id: Set(alert.run_id.clone()),
            fire_ts_ms: Set(alert.fire_time.map(|t| t.timestamp_millis())),
            node_id: Set(sender.node.clone()),
            state: Set(outcome.state.to_owned()),
            attempts: Set(outcome.attempts as i32),
            http_status: Set(outcome.http_status.map(i32::from)),
            error: Set(outcome.error.clone()),
            suppressed: Set(alert.suppressed as i64),
            created_at: Set(created),
            finished_at: Set(Some(Utc::now())),
            ..Default::default()
        };
        if let Err(e) = store::record_delivery(db, row).await {
            tracing::warn!(target: "cronmesh::alerts", route = %route.name, task = %alert.task, "the alert's delivery record could not be written: {e}");
        }
    }
    outcome
}

/// The body of an alert for `route`.
fn body(route: &AlertRoute, sender: &Sender, alert: &Alert) -> Vec<u8> {
    let console = sender.console_url.as_deref();
    match route.format {
        AlertFormat::Slack => slack_body(alert, console).to_string().into_bytes(),
        AlertFormat::Json => {
            serde_json::to_vec(&JsonPayload::of(alert, console)).unwrap_or_default()
        }
    }
}

/// The headers of one attempt: a `json` route's are signed at the time of the attempt, so a
/// retry is not refused as a replay.
fn headers(route: &AlertRoute, alert: &Alert, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if route.format == AlertFormat::Json {
        let ts = Utc::now().timestamp();
        headers.push(("x-cronmesh-timestamp", ts.to_string()));
        headers.push((
            "x-cronmesh-signature",
            sign(route.secret().unwrap_or_default(), ts, body),
        ));
        headers.push(("x-cronmesh-event", alert.event.as_str().to_owned()));
    }
    headers
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// POSTs until the receiver answers 2xx, it refuses for good (a 3xx, a 4xx other than 408 and
/// 429), or the attempts are spent; waits double after each failure, up to a minute.
async fn post_with_retries(route: &AlertRoute, sender: &Sender, alert: &Alert) -> Outcome {
    let body = body(route, sender, alert);
    let mut wait = sender.retry.first_backoff;
    let mut last = Outcome {
        state: "failed",
        attempts: 0,
        http_status: None,
        error: None,
    };
    for attempt in 1..=sender.retry.attempts.max(1) {
        if attempt > 1 {
            sender.metrics.alert("retried");
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2).min(MAX_BACKOFF);
        }
        let mut req = sender
            .client
            .post(route.url())
            .timeout(sender.retry.timeout)
            .body(body.clone());
        for (k, v) in headers(route, alert, &body) {
            req = req.header(k, v);
        }
        last.attempts = attempt;
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                last.state = "sent";
                last.http_status = Some(resp.status().as_u16());
                last.error = None;
                return last;
            }
            Ok(resp) => {
                let status = resp.status();
                last.http_status = Some(status.as_u16());
                last.error = Some(format!("the receiver answered {status}"));
                // A redirect or a refusal will not change on a retry (408 and 429 may).
                let final_answer = status.is_redirection()
                    || (status.is_client_error() && !matches!(status.as_u16(), 408 | 429));
                if final_answer {
                    return last;
                }
            }
            // Without the URL: a webhook URL may hold its token.
            Err(e) => last.error = Some(e.without_url().to_string()),
        }
    }
    last
}

/// Sends a sample alert through the route named `route` now (`cronmesh alerts test`), with
/// the route's retries, and records it when `db` is given. An unknown route is an error
/// naming the routes there are.
pub async fn send_test(
    config: &AlertConfig,
    route: &str,
    db: Option<DatabaseConnection>,
    node: &str,
) -> Result<Outcome, String> {
    let Some(found) = config.route(route) else {
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        return Err(if names.is_empty() {
            format!(
                "no alert route named {}: no [[alerts.routes]] is configured",
                scheduler_core::quoted(route)
            )
        } else {
            format!(
                "no alert route named {}; the routes are {}",
                scheduler_core::quoted(route),
                names.join(", ")
            )
        });
    };
    let sender = Sender::new(config, db, Metrics::new(), node);
    Ok(deliver(found, &sender, &Alert::sample(node)).await)
}

/// The client alerts are sent with: no redirects (a webhook that redirects is misconfigured,
/// and a redirect must not carry the body elsewhere).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cronmesh/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
