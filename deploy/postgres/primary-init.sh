#!/bin/bash
# Runs once, when the primary's data directory is first created (the postgres image runs every
# script in /docker-entrypoint-initdb.d/ then): a role for streaming replication, the physical slot
# the replica streams from, and the pg_hba line that lets that role in over the network.
set -euo pipefail

: "${REPLICATION_USER:?}" "${REPLICATION_PASSWORD:?}" "${REPLICATION_SLOT:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="$REPLICATION_USER" -v password="$REPLICATION_PASSWORD" -v slot="$REPLICATION_SLOT" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
-- A slot keeps the WAL the replica has not received yet, so a replica that was down catches up
-- instead of needing a new base backup (max_slot_wal_keep_size bounds what it may hold).
SELECT pg_create_physical_replication_slot(:'slot');
SQL

# "all" in pg_hba.conf does not cover replication connections: they need their own line.
echo "host replication ${REPLICATION_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
