//! cronmesh integration tests: one test binary, real databases, the real `cronmesh` binary.
//!
//! Postgres tests use a fresh database per test on the server named by
//! `CRONMESH_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped afterwards.
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod support;

mod alerts;
mod api;
mod api_flow;
mod apscheduler_import;
mod bad_input;
mod bench;
mod cli_check;
mod cli_errors;
mod cli_next;
mod cluster;
mod console;
mod engine;
mod first_start;
mod guide;
mod handover;
mod idle_tasks;
mod import;
mod library;
mod migrations;
mod operations;
mod overload;
mod secrets;
mod settle;
mod start_errors;
