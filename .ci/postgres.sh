# shellcheck shell=bash
# Sourced by .ci/run (as root, on a fresh Debian 12 machine) before the tests: installs PostgreSQL when
# missing, starts a local cluster, creates the test role and database, and exports
# OAAMAP_TEST_POSTGRES_URL for tests/sources/conftest.py. Idempotent: a second run only checks that
# the server answers. Returns non-zero (never exits: it is sourced) when the server cannot start.
#
# Overrides: OAAMAP_TEST_POSTGRES_URL already set and reachable -> nothing is done.
#            OAAMAP_PG_PORT (default: the cluster's port, else 5432).

_oaamap_pg_log() { echo "postgres.sh: $*" >&2; }

_oaamap_pg_as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

_oaamap_pg_bindir() {
  # The newest installed major version's bin directory (Debian layout), or pg_config's.
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ] && command -v pg_config >/dev/null 2>&1; then dir=$(pg_config --bindir); fi
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

_oaamap_pg_install() {
  if [ -n "$(_oaamap_pg_bindir)" ]; then return 0; fi
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    _oaamap_pg_log "PostgreSQL is not installed and cannot be installed here (need root and apt-get)"
    return 1
  fi
  _oaamap_pg_log "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
}

_oaamap_pg_start_debian() {
  # Debian's cluster tools: start (or create and start) the default cluster of the newest version.
  local version port status
  version=$(basename "$(dirname "$(_oaamap_pg_bindir)")")
  if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1==v && $2=="main" {f=1} END {exit !f}'; then
    _oaamap_pg_log "creating cluster $version/main"
    pg_createcluster "$version" main >/dev/null || return 1
  fi
  port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
  status=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}')
  if [ "$status" != "online" ]; then
    _oaamap_pg_log "starting cluster $version/main on port $port"
    pg_ctlcluster "$version" main start || return 1
  fi
  OAAMAP_PG_PORT=${OAAMAP_PG_PORT:-$port}
}

_oaamap_pg_start_initdb() {
  # No Debian cluster tools (another distribution, or a bare install): our own data directory.
  local bindir=$1 data=/var/tmp/oaamap-pg
  OAAMAP_PG_PORT=${OAAMAP_PG_PORT:-5432}
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown postgres "$data" || return 1
    _oaamap_pg_as_postgres "$bindir/initdb" -D "$data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 >/dev/null || return 1
  fi
  if ! _oaamap_pg_as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    _oaamap_pg_as_postgres "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-p $OAAMAP_PG_PORT -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null || return 1
  fi
  _OAAMAP_PG_SOCKET=/tmp
}

_oaamap_pg_wait() {
  local bindir=$1 i
  for i in $(seq 1 30); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$OAAMAP_PG_PORT"; then return 0; fi
    sleep 0.5
  done
  _oaamap_pg_log "the server did not accept connections on 127.0.0.1:$OAAMAP_PG_PORT within 15 s"
  return 1
}

_oaamap_pg_create_db() {
  # A role with a password (the tests connect over TCP with password authentication) and its db.
  local bindir=$1 psql
  psql="$bindir/psql -v ON_ERROR_STOP=1 -q -X -p $OAAMAP_PG_PORT -d postgres"
  if [ -n "${_OAAMAP_PG_SOCKET:-}" ]; then psql="$psql -h $_OAAMAP_PG_SOCKET"; fi
  _oaamap_pg_as_postgres $psql -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'oaamap') THEN
        CREATE ROLE oaamap LOGIN PASSWORD 'oaamap';
      END IF; END \$\$;" || return 1
  if [ "$(_oaamap_pg_as_postgres $psql -tAc "SELECT 1 FROM pg_database WHERE datname='oaamap_test'")" != "1" ]; then
    _oaamap_pg_as_postgres $psql -c "CREATE DATABASE oaamap_test OWNER oaamap" || return 1
  fi
}

_oaamap_pg_main() {
  local bindir
  _oaamap_pg_install || return 1
  bindir=$(_oaamap_pg_bindir) || { _oaamap_pg_log "no pg_ctl found after installation"; return 1; }
  if command -v pg_lsclusters >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    _oaamap_pg_start_debian || return 1
  else
    _oaamap_pg_start_initdb "$bindir" || return 1
  fi
  _oaamap_pg_wait "$bindir" || return 1
  _oaamap_pg_create_db "$bindir" || return 1
  export OAAMAP_TEST_POSTGRES_URL="postgresql+psycopg://oaamap:oaamap@127.0.0.1:${OAAMAP_PG_PORT}/oaamap_test"
  _oaamap_pg_log "PostgreSQL is ready: OAAMAP_TEST_POSTGRES_URL=postgresql+psycopg://oaamap:***@127.0.0.1:${OAAMAP_PG_PORT}/oaamap_test"
}

if [ -n "${OAAMAP_TEST_POSTGRES_URL:-}" ]; then
  _oaamap_pg_log "OAAMAP_TEST_POSTGRES_URL is already set; using it as given"
else
  _oaamap_pg_main
fi
