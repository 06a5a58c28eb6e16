#!/usr/bin/env bash
# Makes sure the services the test suite needs are installed and running:
# Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432.
# Installs them from Debian's packages when missing (needs root), starts them when down.
# Tests that kill or restart a server start private instances of their own; these shared
# ones are never stopped by the suite.
set -euo pipefail

need_apt_update=1
apt_install() {
  if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null 2>&1; then
  echo "services: installing redis-server"
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# faketime runs a node with its clock behind in the clock-skew test.
if ! command -v faketime >/dev/null 2>&1; then
  echo "services: installing faketime"
  apt_install faketime
fi

# promtool (in Debian's prometheus package) checks deploy/prometheus/cronmesh-rules.yml. The
# package's daemon is kept from starting while it installs.
if ! command -v promtool >/dev/null 2>&1; then
  echo "services: installing promtool (Debian's prometheus package; its daemon is not started)"
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt_install prometheus || echo "services: no prometheus package; the rules are checked by the metric-name test only"
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# Debian's headless Chromium: the console's browser tests drive it.
if [ ! -x /usr/bin/chromium ]; then
  echo "services: installing chromium"
  apt_install chromium
fi

# A Python venv with schemathesis (the API's schema fuzzing test runs it against a live node)
# and Playwright for Python (the console's browser tests; it drives /usr/bin/chromium and never
# downloads a browser of its own).
venv="${CRONMESH_VENV:-/var/tmp/cronmesh-venv}"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
fi
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "services: installing schemathesis into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis>=4,<5"
fi
if ! "$venv/bin/python" -c "import apscheduler, sqlalchemy" >/dev/null 2>&1; then
  echo "services: installing APScheduler 3 and SQLAlchemy into $venv (the import tests' real job store)"
  "$venv/bin/pip" install -q --disable-pip-version-check "apscheduler>=3.10,<4" "sqlalchemy>=2,<3"
fi
if ! "$venv/bin/python" -c "import playwright" >/dev/null 2>&1; then
  echo "services: installing playwright (the Python client only) into $venv"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/pip" install -q --disable-pip-version-check "playwright>=1.40,<2"
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "services: installing postgresql"
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "services: starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi

for _ in $(seq 1 50); do
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    exit 0
  fi
  sleep 0.2
done
echo "services: redis or postgresql did not come up" >&2
exit 1
