//! `cronmesh inspect`: a running node's actor mailbox metrics, from its admin HTTP server.

use std::process::ExitCode;

use anyhow::Context;
use scheduler_actors::MetricsSnapshot;

use super::output::table;
use crate::settings::Settings;

/// Arguments of `cronmesh inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The node's admin URL (default: from http.bind).
    #[arg(long)]
    url: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(settings: &Settings, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let base = match (&args.url, settings.http_bind) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => anyhow::bail!(crate::cli::InvalidInput(
            "the admin HTTP server is disabled (http.enabled = false); pass --url".to_owned()
        )),
    };
    if reqwest::Url::parse(&base).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        anyhow::bail!(crate::cli::InvalidInput(format!(
            "--url {} is not an http:// URL of a node's admin server",
            scheduler_core::quoted(&store::redact_url(&base))
        )));
    }
    let url = format!("{base}/api/actors");
    let shown = store::redact_url(&url);
    let body = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .map_err(reqwest::Error::without_url)
        .with_context(|| format!("asking {shown} (is a node running there?)"))?
        .text()
        .await?;
    if args.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let snap: MetricsSnapshot =
        serde_json::from_str(&body).with_context(|| format!("reading {url}"))?;
    let mut t = table([
        "ACTOR",
        "INSTANCES",
        "MAILBOX",
        "RECEIVED",
        "HANDLED",
        "RESTARTS",
    ]);
    for a in &snap.actors {
        t.add_row([
            a.actor.clone(),
            a.instances.to_string(),
            a.mailbox_depth.to_string(),
            a.received.to_string(),
            a.handled.to_string(),
            a.restarts.to_string(),
        ]);
    }
    println!("{t}\n");
    let mut m = table(["ACTOR", "MESSAGE", "RECEIVED", "HANDLED"]);
    for a in &snap.actors {
        for (name, s) in &a.messages {
            m.add_row([
                a.actor.clone(),
                name.clone(),
                s.received.to_string(),
                s.handled.to_string(),
            ]);
        }
    }
    println!("{m}\n");
    let runs: Vec<String> = snap
        .runs_total
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "fires: {}   runs: {}   buffered writes: {}/{}   degraded: {}",
        snap.fires_total,
        if runs.is_empty() {
            "-".to_owned()
        } else {
            runs.join(" ")
        },
        snap.persistence_buffered,
        snap.persistence_buffer_bound,
        snap.degraded
    );
    Ok(ExitCode::SUCCESS)
}
