#!/usr/bin/env bash
# Makes sure the services the test suite talks to are answering. Tries each start command once
# (as documented for the development and CI machines); with CI=true a service that still does
# not answer fails the run, elsewhere it is reported and its tests are skipped.
set -u

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

ensure() {
  local name=$1 port=$2 start=$3
  answers "$port" && return 0
  echo "ensure-services: $name is not answering on 127.0.0.1:$port; starting it" >&2
  bash -c "$start" >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do answers "$port" && return 0; sleep 0.5; done
  if [ "${CI:-}" = "true" ]; then
    echo "ensure-services: $name is required in CI and did not start" >&2
    exit 1
  fi
  echo "ensure-services: $name unavailable; its tests will be skipped" >&2
  return 1
}

ensure PostgreSQL 5432 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' \
  && echo "GLOBEGUARD_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ensure Redis 6379 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log' \
  && echo "GLOBEGUARD_TEST_REDIS_URL=redis://127.0.0.1:6379/0"
ensure NATS 4222 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log' \
  && echo "GLOBEGUARD_TEST_NATS_URL=nats://127.0.0.1:4222"
exit 0
