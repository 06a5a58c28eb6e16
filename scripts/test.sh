#!/usr/bin/env bash
# Runs every check and test of the workspace against real Redis and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh

# Postgres tests create a database per test on this server. A fresh Debian install does not
# trust local TCP logins; fall back to a password when trust is not configured.
if [ -z "${CRONMESH_TEST_DATABASE_URL:-}" ]; then
  if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 </dev/null; then
    export CRONMESH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
  else
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    export CRONMESH_TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres
  fi
fi

# A target directory outside the clone survives between runs and saves a full rebuild.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cronmesh-target}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --doc --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
