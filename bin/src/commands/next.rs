//! `cronmesh next`: the next fire times of an expression or a trigger, to try a schedule
//! before deploying it.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use scheduler_core::{Trigger, rfc3339};

use crate::cli::InvalidInput;

/// Arguments of `cronmesh next`.
#[derive(Debug, clap::Args)]
pub(crate) struct NextArgs {
    /// Cron expression (5, 6 or 7 fields, or a macro such as @daily).
    #[arg(
        required_unless_present = "trigger_json",
        conflicts_with = "trigger_json"
    )]
    expr: Option<String>,
    /// IANA time zone of the expression.
    #[arg(long, default_value = "UTC", conflicts_with = "trigger_json")]
    tz: String,
    /// A full trigger JSON instead of an expression.
    #[arg(long, value_name = "JSON")]
    trigger_json: Option<String>,
    /// Start after this instant (RFC 3339; default: now).
    #[arg(long, value_name = "RFC3339")]
    after: Option<String>,
    /// How many fire times.
    #[arg(short = 'n', default_value_t = 5)]
    n: usize,
    /// Print one JSON object with UTC instants.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &NextArgs) -> anyhow::Result<ExitCode> {
    let trigger = match (&args.expr, &args.trigger_json) {
        (_, Some(json)) => Trigger::from_json(json),
        (Some(expr), None) => Trigger::cron(expr, &args.tz),
        (None, None) => unreachable!("clap requires one of them"),
    }
    .map_err(|e| InvalidInput(e.to_string()))?;
    let after = match &args.after {
        None => Utc::now(),
        Some(s) => super::instant("--after", s)?,
    };
    let fires: Vec<DateTime<Utc>> = trigger
        .fires_between(after, DateTime::<Utc>::MAX_UTC)
        .take(args.n)
        .collect();

    let zone = match &trigger {
        Trigger::Cron { schedule, .. } => schedule.zone(),
        _ => chrono_tz::UTC,
    };
    if args.json {
        let expr = match &trigger {
            Trigger::Cron { schedule, .. } => Some(schedule.expr().as_str()),
            _ => None,
        };
        let out = serde_json::json!({
            "expr": expr,
            "timezone": zone.name(),
            "trigger": serde_json::from_str::<serde_json::Value>(&trigger.to_json())?,
            "fires": fires.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for t in &fires {
            println!(
                "{}",
                t.with_timezone(&zone)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
