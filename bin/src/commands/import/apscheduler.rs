//! `cronmesh import apscheduler FILE.json --handlers MAP.toml`: the jobs of an APScheduler 3
//! job store (as `scripts/apscheduler-export.py` writes them) as tasks with the same fire
//! times, each run by the handler the map names for its function.
//!
//! How APScheduler's triggers translate:
//! - cron: `second minute hour day month day_of_week year` become a 7-field expression in the
//!   trigger's zone. APScheduler counts `day_of_week` 0 = Monday (names are the same), and
//!   requires `day` and `day_of_week` both to match, so a trigger restricting both gets
//!   `"day_match": "all"`. In `day`, `last` is `L`, and `1st fri` / `last fri` become
//!   day-of-week `FRI#1` / `FRIL` (when `day_of_week` is `*`). `start_date`/`end_date` become
//!   `start_at`/`end_at`. A `week` other than `*`, jitter, or a `day` expression with no exact
//!   equivalent is refused.
//! - date: `run_date` is the one fire.
//! - interval: every `interval` seconds from `start_date` (or the stored next run time). An
//!   interval that starts in the future, ends, or has jitter is refused (a cronmesh interval
//!   has neither start nor end).
//! - `misfire_grace_time` g: fires up to g late run, older ones never (`skip` with grace g,
//!   as APScheduler drops a run later than its grace whatever `coalesce` says); without one,
//!   missed fires run once (`coalesce`) or each; `max_instances == 1` forbids overlap (more
//!   allows it, without a limit). A paused job (no next run time) is imported disabled; a date
//!   job whose time has passed is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Wanted, check_module, write_all};
use crate::cli::InvalidInput;
use crate::settings::Settings;

/// Arguments of `cronmesh import apscheduler`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApschedulerArgs {
    /// The export (`scripts/apscheduler-export.py URL > FILE.json`).
    file: PathBuf,
    /// Which handler runs each job function: a TOML table per function reference, e.g.
    /// `["myapp.jobs:cleanup"]` with `handler = "http"` and `args = {...}`; `["*"]` for the rest.
    #[arg(long, value_name = "MAP.toml")]
    handlers: PathBuf,
    /// Module of the tasks (their names are MODULE.JOB_ID).
    #[arg(long, default_value = "apscheduler")]
    module: String,
    /// Owner of the tasks.
    #[arg(long, default_value = "")]
    owner: String,
    /// Say what would happen; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Create the tasks in shadow mode: their fires are recorded as `shadow` and nothing runs
    /// until `cronmesh tasks cutover` (tasks that exist keep their mode).
    #[arg(long)]
    shadow: bool,
}

/// What the map says runs a function.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Runner {
    handler: String,
    #[serde(default)]
    args: Option<Value>,
}

const WEEKDAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// A weekday of APScheduler (a name, or a number with 0 = Monday) as 0..=6.
fn weekday(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(&lower))
        .or_else(|| text.parse::<usize>().ok().filter(|n| *n <= 6))
}

/// APScheduler's `day_of_week` as cronmesh day names (an explicit list, so numbering and
/// ranges need no translation).
fn day_of_week(expr: &str) -> Result<String, String> {
    let mut days = [false; 7];
    for item in expr.split(',') {
        let item = item.trim();
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("day_of_week {item:?}: bad step"))?,
            ),
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (
                    weekday(a).ok_or_else(|| format!("day_of_week {item:?}: unknown day"))?,
                    weekday(b).ok_or_else(|| format!("day_of_week {item:?}: unknown day"))?,
                ),
                None => {
                    let d =
                        weekday(r).ok_or_else(|| format!("day_of_week {item:?}: unknown day"))?;
                    (d, if item.contains('/') { 6 } else { d })
                }
            },
        };
        if from > to {
            return Err(format!("day_of_week {item:?}: the range runs backwards"));
        }
        for d in (from..=to).step_by(step) {
            days[d] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".to_owned());
    }
    Ok(WEEKDAYS
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(","))
}

/// APScheduler's `day`: (cronmesh day-of-month, a day-of-week it needs instead).
fn day(expr: &str) -> Result<(String, Option<String>), String> {
    let words: Vec<&str> = expr.split_whitespace().collect();
    match words.as_slice() {
        ["last"] => Ok(("L".to_owned(), None)),
        [nth, wd] => {
            let d = weekday(wd).ok_or_else(|| format!("day {expr:?}: unknown weekday"))?;
            let name = WEEKDAYS[d];
            let dow = match *nth {
                "1st" => format!("{name}#1"),
                "2nd" => format!("{name}#2"),
                "3rd" => format!("{name}#3"),
                "4th" => format!("{name}#4"),
                "5th" => format!("{name}#5"),
                "last" => format!("{name}L"),
                _ => return Err(format!("day {expr:?}: unknown position {nth:?}")),
            };
            Ok(("*".to_owned(), Some(dow)))
        }
        _ if expr.contains(|c: char| c.is_ascii_alphabetic()) => Err(format!(
            "day {expr:?} mixes words with other values; cronmesh has no exact equivalent"
        )),
        _ => Ok((expr.to_owned(), None)),
    }
}

fn instant(job: &Value, key: &str, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(scheduler_core::rfc3339(t.with_timezone(&Utc))))
            .map_err(|e| format!("{key} {s:?} of job {}: {e}", job["id"])),
        other => Err(format!("{key} is not an instant: {other}")),
    }
}

/// A job's trigger as cronmesh trigger JSON.
pub(super) fn trigger(job: &Value, now: DateTime<Utc>) -> Result<Value, String> {
    let t = &job["trigger"];
    if t["jitter"].as_f64().is_some_and(|j| j != 0.0) {
        return Err(format!(
            "jitter {} makes fire times random; cronmesh fires exactly",
            t["jitter"]
        ));
    }
    let zone = t["timezone"].as_str().unwrap_or("UTC");
    match t["type"].as_str() {
        Some("cron") => {
            let f = &t["fields"];
            for name in [
                "year",
                "month",
                "day",
                "week",
                "day_of_week",
                "hour",
                "minute",
                "second",
            ] {
                if !f[name].is_string() {
                    return Err(format!(
                        "the cron trigger has no field {name:?} in the export"
                    ));
                }
            }
            let field = |name: &str| f[name].as_str().unwrap_or("*").trim().to_owned();
            if field("week") != "*" {
                return Err(format!(
                    "week {:?}: ISO week numbers have no cronmesh equivalent",
                    field("week")
                ));
            }
            let (dom, dow_from_day) = day(&field("day"))?;
            let dow = day_of_week(&field("day_of_week"))?;
            let dow = match (dow_from_day, dow.as_str()) {
                (None, _) => dow,
                (Some(d), "*") => d,
                (Some(_), _) => {
                    return Err(format!(
                        "day {:?} together with day_of_week {:?} has no exact cronmesh equivalent",
                        field("day"),
                        field("day_of_week")
                    ));
                }
            };
            let month = field("month").to_ascii_uppercase();
            let expr = format!(
                "{} {} {} {dom} {month} {dow} {}",
                field("second"),
                field("minute"),
                field("hour"),
                field("year")
            );
            let mut out = json!({"type": "cron", "expr": expr, "timezone": zone});
            if dom != "*" && dow != "*" {
                out["day_match"] = json!("all");
            }
            if let Some(start) = instant(job, "start_date", &t["start_date"])? {
                out["start_at"] = json!(start);
            }
            if let Some(end) = instant(job, "end_date", &t["end_date"])? {
                out["end_at"] = json!(end);
            }
            Ok(out)
        }
        Some("date") => {
            let run_at = instant(job, "run_date", &t["run_date"])?
                .ok_or_else(|| "a date trigger without run_date".to_owned())?;
            if DateTime::parse_from_rfc3339(&run_at).is_ok_and(|r| r <= now) {
                return Err(format!(
                    "its run_date {run_at} has passed and it has not run; run it by hand if it is still owed"
                ));
            }
            Ok(json!({"type": "date", "run_at": run_at}))
        }
        Some("interval") => {
            if !t["end_date"].is_null() {
                return Err(
                    "an interval with an end_date; cronmesh intervals do not end".to_owned(),
                );
            }
            let secs = t["interval_seconds"].as_f64().unwrap_or(0.0);
            if secs < 1.0 || secs.fract() != 0.0 {
                return Err(format!(
                    "an interval of {secs} s; cronmesh intervals are whole seconds, at least 1"
                ));
            }
            let anchor = match instant(job, "start_date", &t["start_date"])? {
                Some(start) => {
                    // APScheduler starts a new interval job one interval from when it was
                    // added; cronmesh would only differ if a fire fell before the start.
                    let every = chrono::Duration::seconds(secs as i64);
                    if DateTime::parse_from_rfc3339(&start).is_ok_and(|s| s > now + every) {
                        return Err(format!(
                            "the interval starts in the future ({start}); a cronmesh interval has no start and would fire before it"
                        ));
                    }
                    start
                }
                None => instant(job, "next_run_time", &job["next_run_time"])?.ok_or_else(|| {
                    "an interval with neither start_date nor next_run_time".to_owned()
                })?,
            };
            Ok(json!({"type": "interval", "every_secs": secs as u64, "anchor": anchor}))
        }
        other => Err(format!(
            "trigger type {} has no cronmesh equivalent",
            other.map_or_else(|| t["class"].to_string(), str::to_owned)
        )),
    }
}

/// The task a job becomes, or why it cannot.
pub(super) fn decl_of(
    job: &Value,
    args: &ApschedulerArgs,
    map: &BTreeMap<String, Runner>,
    now: DateTime<Utc>,
) -> Result<TaskDecl, String> {
    let id = job["id"].as_str().unwrap_or_default();
    let func = job["func"].as_str().unwrap_or_default();
    let runner = map.get(func).or_else(|| map.get("*")).ok_or_else(|| {
        format!("no handler for function {func:?} in the map (add [\"{func}\"] or [\"*\"])")
    })?;
    let trigger = trigger(job, now)?;
    // APScheduler runs a late fire only within misfire_grace_time, whatever coalesce says
    // (coalesce keeps the latest of those). So with a grace: fires within it run, older ones
    // never (`skip` with that grace). Without one (run however late): no grace, and the missed
    // fires run once (coalesce) or each (not).
    let (misfire, grace) = match job["misfire_grace_time"].as_u64() {
        Some(grace) => (MisfirePolicy::Skip, grace),
        None if job["coalesce"] == json!(false) => (
            MisfirePolicy::FireAll {
                max: scheduler_core::misfire::MAX_CATCH_UP_RUNS as u32,
            },
            0,
        ),
        None => (MisfirePolicy::FireOnce, 0),
    };
    let name = format!("{}.{}", args.module, super::task_part(id));
    let mut description = format!("from APScheduler job {id:?} ({func})");
    if let Some(job_name) = job["name"].as_str().filter(|n| *n != id) {
        description.push_str(&format!(": {job_name}"));
    }
    let mut decl = TaskDecl::trigger_json(&name, &trigger.to_string())
        .handler(&runner.handler)
        .owner(&args.owner)
        .description(&description)
        .misfire(misfire)
        .misfire_grace_secs(grace)
        .overlap(if job["max_instances"] == json!(1) {
            OverlapPolicy::Forbid
        } else {
            OverlapPolicy::Allow
        })
        .origin("apscheduler");
    decl.handler_args = runner.args.clone();
    // A paused job (no next run time) stays paused.
    if job["next_run_time"].is_null() {
        decl.enabled = false;
    }
    super::check_fields(&decl)?;
    Ok(decl)
}

pub(super) async fn run(settings: &Settings, args: ApschedulerArgs) -> anyhow::Result<ExitCode> {
    check_module(&args.module)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| InvalidInput(format!("cannot read {}: {e}", args.file.display())))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        InvalidInput(format!(
            "{} is not an export of scripts/apscheduler-export.py: {e}",
            args.file.display()
        ))
    })?;
    let Some(jobs) = doc["jobs"].as_array() else {
        return Err(InvalidInput(format!(
            "{} has no \"jobs\" list; make it with scripts/apscheduler-export.py",
            args.file.display()
        ))
        .into());
    };
    let map_text = std::fs::read_to_string(&args.handlers).map_err(|e| {
        InvalidInput(format!(
            "cannot read handler map {}: {e}",
            args.handlers.display()
        ))
    })?;
    let map: BTreeMap<String, Runner> = toml::from_str(&map_text)
        .map_err(|e| InvalidInput(format!("handler map {}: {e}", args.handlers.display())))?;
    let now = Utc::now();
    let mut seen = std::collections::HashSet::new();
    let mut wanted = Vec::new();
    let mut skipped = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let id = job["id"].as_str().unwrap_or_default();
        let label = format!("job {id}");
        let task = decl_of(job, &args, &map, now);
        if let Ok(decl) = &task
            && !seen.insert(decl.name.clone())
        {
            skipped.push((
                i,
                label,
                format!("its task name {} is another job's too", decl.name),
            ));
            continue;
        }
        wanted.push(Wanted {
            order: i,
            label,
            task,
        });
    }
    for (i, problem) in doc["unreadable"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        skipped.push((
            jobs.len() + i,
            format!("job {}", problem["id"].as_str().unwrap_or("?")),
            problem["problem"]
                .as_str()
                .unwrap_or("unreadable")
                .to_owned(),
        ));
    }
    let source = format!("apscheduler {}", args.file.display());
    write_all(
        settings,
        wanted,
        skipped,
        (args.dry_run, args.shadow),
        &source,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(fields: Value) -> Value {
        json!({"id": "j", "trigger": {"type": "cron", "fields": fields, "timezone": "Europe/Berlin", "jitter": null}})
    }

    #[test]
    fn apscheduler_fields_become_the_same_schedule() {
        let now = Utc::now();
        let t = trigger(
            &cron(json!({"year": "*", "month": "*", "day": "13", "week": "*", "day_of_week": "fri", "hour": "9", "minute": "30", "second": "0"})),
            now,
        )
        .expect("translates");
        assert_eq!(t["expr"], "0 30 9 13 * FRI *");
        assert_eq!(t["day_match"], "all");
        // 0 = Monday, ranges and steps as an explicit list.
        assert_eq!(day_of_week("0-4").expect("ok"), "MON,TUE,WED,THU,FRI");
        assert_eq!(day_of_week("*/2").expect("ok"), "MON,WED,FRI,SUN");
        assert_eq!(day_of_week("sat,6").expect("ok"), "SAT,SUN");
        assert_eq!(day_of_week("mon-sun").expect("ok"), "*");
        assert_eq!(
            day("last fri").expect("ok"),
            ("*".to_owned(), Some("FRIL".to_owned()))
        );
        assert_eq!(
            day("2nd tue").expect("ok"),
            ("*".to_owned(), Some("TUE#2".to_owned()))
        );
        assert_eq!(day("last").expect("ok"), ("L".to_owned(), None));
        for refused in [
            json!({"week": "5"}),
            json!({"day": "last fri", "day_of_week": "mon"}),
            json!({"day": "1,last"}),
        ] {
            let mut fields = json!({"year": "*", "month": "*", "day": "*", "week": "*", "day_of_week": "*", "hour": "0", "minute": "0", "second": "0"});
            for (k, v) in refused.as_object().expect("object") {
                fields[k] = v.clone();
            }
            assert!(trigger(&cron(fields), now).is_err(), "{refused}");
        }
        assert_eq!(
            super::super::task_part("Nightly Report.v2"),
            "nightly_report_v2"
        );
    }
}
