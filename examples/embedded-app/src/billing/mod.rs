//! The billing module: its state and its scheduled jobs.

mod cron_tasks;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// The application's ledger, handed to the node with `NodeBuilder::app_data` and reached by
/// the jobs with `ctx.data::<Ledger>()`. A file of lines, one per entry.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// Where exchange rates come from; `None` = not configured (the rates job fails).
    rates_source: Option<String>,
    write: Mutex<()>,
}

impl Ledger {
    /// A ledger kept in `path`.
    pub fn new(path: impl Into<PathBuf>, rates_source: Option<String>) -> Self {
        Ledger {
            path: path.into(),
            rates_source,
            write: Mutex::new(()),
        }
    }

    /// Appends one entry.
    pub fn record(&self, entry: &str) -> std::io::Result<()> {
        let _one_writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{entry}")
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
