//! `cronmesh shadow-diff`: what the old scheduler ran against what cronmesh recorded, fire by
//! fire, per task, over a window. The old runs come as JSON lines
//! `{"job": "<job id or task name>", "fire_time": "<RFC 3339>"}` (docs/migrating.md shows how
//! APScheduler writes them); cronmesh's are its `task_run` rows (shadow or real). Exit 0 when
//! every fire matches, 1 on any difference, 2 on bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::DateTime;
use entity::task_run::RunStatus;

use super::instant;
use super::open_db;
use crate::cli::InvalidInput;
use crate::settings::Settings;

/// Arguments of `cronmesh shadow-diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShadowDiffArgs {
    /// The old scheduler's runs, one JSON object a line: {"job": ..., "fire_time": ...}.
    old_runs: PathBuf,
    /// Start of the window (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    since: String,
    /// End of the window (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    until: String,
    /// The module the jobs were imported into: a job that is not a task's name is the task
    /// MODULE.JOB_ID, and every task of the module is compared (one the old scheduler never
    /// ran in the window shows all its fires as extra).
    #[arg(long, default_value = "apscheduler")]
    module: String,
    /// Fire times this close (seconds, decimals allowed) count as the same fire.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    tolerance: f64,
    /// A fire unmatched on both sides within this many seconds is reported as one fire at a
    /// different time (a DST rule, a shifted zone) rather than as one missing and one extra.
    #[arg(long, default_value_t = 3600.0, value_name = "SECS")]
    max_shift: f64,
}

/// How one task's fires compare.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TaskDiff {
    /// Fires both ran.
    pub(crate) matched: usize,
    /// The old scheduler ran them; cronmesh has no record (epoch ms).
    pub(crate) missing: Vec<i64>,
    /// cronmesh recorded them; the old scheduler did not run them.
    pub(crate) extra: Vec<i64>,
    /// `(old, cronmesh)`: the same fire at different times.
    pub(crate) shifted: Vec<(i64, i64)>,
}

impl TaskDiff {
    fn differs(&self) -> bool {
        !(self.missing.is_empty() && self.extra.is_empty() && self.shifted.is_empty())
    }
}

/// Compares two sorted lists of fire times (epoch ms): fires within `tolerance` match; what is
/// left on both sides pairs up as a time difference when within `max_shift`, nearest first in
/// time order; the rest is missing or extra.
pub(crate) fn compare(old: &[i64], new: &[i64], tolerance: i64, max_shift: i64) -> TaskDiff {
    let mut diff = TaskDiff::default();
    let (mut old_left, mut new_left) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        if (old[i] - new[j]).abs() <= tolerance {
            diff.matched += 1;
            i += 1;
            j += 1;
        } else if old[i] < new[j] {
            old_left.push(old[i]);
            i += 1;
        } else {
            new_left.push(new[j]);
            j += 1;
        }
    }
    old_left.extend_from_slice(&old[i..]);
    new_left.extend_from_slice(&new[j..]);
    // The nearest unpaired cronmesh fire on either side of each old one: O(n log n), so a
    // week of a per-second job shifted as a whole still compares at once.
    let mut unpaired: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for n in new_left {
        *unpaired.entry(n).or_default() += 1;
    }
    for o in old_left {
        let before = unpaired.range(..=o).next_back().map(|(n, _)| *n);
        let after = unpaired.range(o..).next().map(|(n, _)| *n);
        let nearest = [before, after]
            .into_iter()
            .flatten()
            .filter(|n| (n - o).abs() <= max_shift)
            .min_by_key(|n| (n - o).abs());
        match nearest {
            Some(n) => {
                if let Some(count) = unpaired.get_mut(&n) {
                    *count -= 1;
                    if *count == 0 {
                        unpaired.remove(&n);
                    }
                }
                diff.shifted.push((o, n));
            }
            None => diff.missing.push(o),
        }
    }
    diff.extra = unpaired
        .into_iter()
        .flat_map(|(n, count)| std::iter::repeat_n(n, count))
        .collect();
    diff
}

/// One line of the old runs.
#[derive(serde::Deserialize)]
struct OldRun {
    job: String,
    fire_time: String,
}

/// The old runs in the window, by job, read from `path`; a line that is not a run is bad
/// input naming its line. Returns the runs and how many lay outside the window.
fn read_old_runs(
    path: &std::path::Path,
    since_ms: i64,
    until_ms: i64,
) -> Result<(BTreeMap<String, Vec<i64>>, usize), InvalidInput> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InvalidInput(format!("cannot read {}: {e}", path.display())))?;
    let mut by_job: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut outside = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |what: String| InvalidInput(format!("{} line {}: {what}", path.display(), n + 1));
        let run: OldRun = serde_json::from_str(line).map_err(|e| {
            at(format!(
                "not a run {{\"job\": \"...\", \"fire_time\": \"<RFC 3339>\"}} ({e})"
            ))
        })?;
        let fire = DateTime::parse_from_rfc3339(&run.fire_time)
            .map_err(|e| {
                at(format!(
                    "fire_time {} is not an RFC 3339 instant ({e})",
                    scheduler_core::quoted(&run.fire_time)
                ))
            })?
            .timestamp_millis();
        if fire < since_ms || fire >= until_ms {
            outside += 1;
            continue;
        }
        by_job.entry(run.job).or_default().push(fire);
    }
    Ok((by_job, outside))
}

/// A window's fire time as the report shows it.
fn shown(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), scheduler_core::rfc3339)
}

/// Seconds given on the command line, as milliseconds.
fn millis(flag: &str, secs: f64) -> Result<i64, InvalidInput> {
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(InvalidInput(format!(
            "{flag} {secs}: give seconds from 0 to 86400"
        )));
    }
    Ok((secs * 1000.0).round() as i64)
}

pub(crate) async fn run(settings: &Settings, args: ShadowDiffArgs) -> anyhow::Result<ExitCode> {
    let since = instant("--since", &args.since)?;
    let until = instant("--until", &args.until)?;
    if until <= since {
        return Err(InvalidInput(format!(
            "--until {} is not after --since {}",
            args.until, args.since
        ))
        .into());
    }
    super::import::check_module(&args.module)?;
    let tolerance = millis("--tolerance", args.tolerance)?;
    let max_shift = millis("--max-shift", args.max_shift)?;
    let (since_ms, until_ms) = (since.timestamp_millis(), until.timestamp_millis());
    let (by_job, outside) = read_old_runs(&args.old_runs, since_ms, until_ms)?;
    let db = open_db(settings).await?;

    // Each job's task: its own name, else MODULE.JOB_ID as the importer named it.
    let mut old: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (job, fires) in by_job {
        let imported = format!("{}.{}", args.module, super::import::task_part(&job));
        let mut task = None;
        for name in [&job, &imported] {
            match store::get_task(&db, name).await {
                Ok(_) => {
                    task = Some(name.clone());
                    break;
                }
                Err(store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match task {
            Some(task) => old.entry(task).or_default().extend(fires),
            None => unknown.push((job, imported, fires.len())),
        }
    }
    let tasks: BTreeSet<String> = old
        .keys()
        .cloned()
        .chain(store::task_names_in_module(&db, &args.module).await?)
        .collect();

    println!(
        "shadow-diff {} .. {}: {} tasks",
        scheduler_core::rfc3339(since),
        scheduler_core::rfc3339(until),
        tasks.len()
    );
    let mut differing = 0;
    for task in &tasks {
        let mut was = old.remove(task).unwrap_or_default();
        was.sort_unstable();
        let before = was.len();
        was.dedup();
        let twice = before - was.len();
        // Fires cronmesh computed and took: every record but the fires it did not run.
        let ran: Vec<i64> = store::recorded_fires(&db, task, since_ms, until_ms)
            .await?
            .into_iter()
            .filter(|(_, status)| {
                !matches!(status, RunStatus::Misfired | RunStatus::SkippedOverlap)
            })
            .map(|(fire, _)| fire)
            .collect();
        let diff = compare(&was, &ran, tolerance, max_shift);
        let mut line = format!("  {task}: {} matched", diff.matched);
        if diff.differs() {
            differing += 1;
            line.push_str(&format!(
                ", {} missing in cronmesh, {} extra in cronmesh, {} at another time",
                diff.missing.len(),
                diff.extra.len(),
                diff.shifted.len()
            ));
        }
        println!("{line}");
        if twice > 0 {
            println!("    note: the old scheduler ran {twice} of these fires twice");
        }
        for fire in &diff.missing {
            println!("    missing in cronmesh  {}", shown(*fire));
        }
        for fire in &diff.extra {
            println!("    extra in cronmesh    {}", shown(*fire));
        }
        for (was, now) in &diff.shifted {
            println!(
                "    at another time      old {}, cronmesh {} ({:+} s)",
                shown(*was),
                shown(*now),
                (now - was) as f64 / 1000.0
            );
        }
    }
    for (job, imported, runs) in &unknown {
        println!(
            "  job {}: {runs} runs, but no task is named {} or {}",
            scheduler_core::quoted(job),
            scheduler_core::quoted(job),
            scheduler_core::quoted(imported)
        );
    }
    if outside > 0 {
        println!("  ({outside} old runs outside the window were not compared)");
    }
    let verdict = differing + unknown.len();
    if verdict == 0 {
        println!("no differences");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{differing} tasks differ, {} jobs have no task",
            unknown.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_fires_match_and_nothing_differs() {
        let d = compare(&[1000, 2000, 3000], &[1000, 2000, 3000], 0, 3_600_000);
        assert_eq!(d.matched, 3);
        assert!(!d.differs());
    }

    #[test]
    fn a_fire_on_one_side_only_is_missing_or_extra() {
        let d = compare(&[1000, 2000, 3000], &[1000, 3000, 4_000_000], 0, 60_000);
        assert_eq!(d.matched, 2);
        assert_eq!(d.missing, [2000]);
        assert_eq!(d.extra, [4_000_000]);
        assert!(d.shifted.is_empty());
    }

    #[test]
    fn a_fire_moved_within_the_shift_is_one_time_difference() {
        // A DST gap: the old scheduler skipped 02:30, cronmesh ran it at 03:00.
        let hour = 3_600_000;
        let d = compare(&[0, 2 * hour], &[0, 2 * hour + hour / 2], 0, hour);
        assert_eq!(d.matched, 1);
        assert_eq!(d.shifted, [(2 * hour, 2 * hour + hour / 2)]);
        assert!(d.missing.is_empty() && d.extra.is_empty());
    }

    #[test]
    fn the_tolerance_absorbs_a_log_taken_at_run_start() {
        let d = compare(&[1000, 61_000], &[1002, 61_004], 5, 60_000);
        assert_eq!(d.matched, 2);
        let strict = compare(&[1000, 61_000], &[1002, 61_004], 0, 60_000);
        assert_eq!(strict.matched, 0);
        assert_eq!(strict.shifted.len(), 2);
    }

    #[test]
    fn a_week_of_seconds_shifted_as_a_whole_compares_quickly() {
        let old: Vec<i64> = (0..604_800).map(|s| s * 1000).collect();
        let new: Vec<i64> = old.iter().map(|t| t + 500).collect();
        let d = compare(&old, &new, 0, 1000);
        assert_eq!(d.shifted.len(), old.len());
        assert!(d.missing.is_empty() && d.extra.is_empty());
    }

    #[test]
    fn bad_lines_are_named_with_their_number() {
        let dir = std::env::temp_dir().join(format!("shadow-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("old.jsonl");
        std::fs::write(
            &file,
            "{\"job\":\"a\",\"fire_time\":\"2027-01-01T00:00:00Z\"}\n\n{\"job\":\"a\",\"fire_time\":\"yesterday\"}\n",
        )
        .expect("write");
        let err = read_old_runs(&file, 0, i64::MAX).expect_err("refused").0;
        assert!(
            err.contains("line 3") && err.contains("\"yesterday\""),
            "{err}"
        );
        std::fs::write(&file, "{\"job\":\"a\"}\n").expect("write");
        let err = read_old_runs(&file, 0, i64::MAX).expect_err("refused").0;
        assert!(err.contains("line 1") && err.contains("fire_time"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
