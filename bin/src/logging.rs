//! Log output: human lines on stderr by default, JSON lines for log shippers, and an optional
//! daily-rolling file written by a non-blocking worker. Scheduler events carry the target
//! `cron_task` and the fields task, run_id, fire_time, node, attempt and status.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::error::InvalidInput;
use crate::settings::{LogFormat, Settings};

/// Keeps the file writer flushing; drop it last.
pub(crate) struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`). A
/// `log.dir` where no log file can be written is bad input naming the key.
pub(crate) fn init(settings: &Settings) -> anyhow::Result<LogGuard> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"))
    };
    let json = settings.log_format == LogFormat::Json;
    let stderr_layer = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        // Colour codes only where a terminal will show them, not in files or pipes.
        fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let (file_layer, guard) = match &settings.log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("cronmesh.log")
                .build(dir)
                .map_err(|e| {
                    InvalidInput(format!(
                        "config key `log.dir`: {:?} cannot hold log files: {e}",
                        dir.display()
                    ))
                })?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            // Files are for machines: always JSON lines.
            let layer = fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter())
                .boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    Ok(LogGuard(guard))
}
