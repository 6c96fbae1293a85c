#!/bin/bash
# Entrypoint of the streaming replica: on an empty data directory, copy the primary with
# pg_basebackup (-R writes standby.signal and primary_conninfo, so the server starts as a hot
# standby that streams from the primary's slot); then run postgres with the arguments given.
set -euo pipefail

: "${PRIMARY_HOST:?}" "${REPLICATION_USER:?}" "${REPLICATION_PASSWORD:?}" "${REPLICATION_SLOT:?}"
PRIMARY_PORT=${PRIMARY_PORT:-5432}
PGDATA=${PGDATA:-/var/lib/postgresql/data}

# The container starts as root (to own a fresh volume); postgres refuses to run as root.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec gosu postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready --quiet --host "$PRIMARY_HOST" --port "$PRIMARY_PORT"; do
    echo "replica: waiting for the primary at $PRIMARY_HOST:$PRIMARY_PORT"
    sleep 1
  done
  echo "replica: copying the primary (pg_basebackup)"
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup --host "$PRIMARY_HOST" --port "$PRIMARY_PORT" \
    --username "$REPLICATION_USER" --pgdata "$PGDATA" --wal-method stream \
    --slot "$REPLICATION_SLOT" --write-recovery-conf --checkpoint fast --progress
  chmod 700 "$PGDATA"
fi

exec postgres "$@"
