//! The orders module of the example application.

mod cron_tasks;
