#!/usr/bin/env bash
# Runs a command with a PostgreSQL server available, exported as
# TEST_DATABASE_URL and DATABASE_URL.
#
#   scripts/with-postgres.sh [--throwaway] -- command args...
#
# Without --throwaway the server is, in order: $TEST_DATABASE_URL (or
# $DATABASE_URL), the local server at 127.0.0.1:5432, or a throwaway cluster
# started from the local PostgreSQL binaries. With --throwaway, an explicit
# $DATABASE_URL is used if set, and otherwise always a throwaway cluster. A
# throwaway cluster lives in a temporary directory on a free port and is
# stopped and removed when the command ends.
set -euo pipefail

throwaway=0
while [ $# -gt 0 ]; do
  case "$1" in
    --throwaway) throwaway=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--throwaway] -- command..." >&2; exit 2; }

local_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

run() {
  export TEST_DATABASE_URL="$1"
  export DATABASE_URL="${DATABASE_URL:-$1}"
  shift
  "$@"
}

pg_bin_dir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin /opt/homebrew/bin /usr/local/bin /usr/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
  return 1
}

if [ "$throwaway" = 1 ]; then
  if [ -n "${DATABASE_URL:-}" ]; then run "$DATABASE_URL" "$@"; exit; fi
else
  if [ -n "${TEST_DATABASE_URL:-}" ]; then run "$TEST_DATABASE_URL" "$@"; exit; fi
  if [ -n "${DATABASE_URL:-}" ]; then run "$DATABASE_URL" "$@"; exit; fi
  if command -v psql >/dev/null 2>&1 && psql "$local_url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    run "$local_url" "$@"; exit
  fi
fi

if ! bindir="$(pg_bin_dir)"; then
  cat >&2 <<'MSG'
No PostgreSQL found: set TEST_DATABASE_URL (or DATABASE_URL) to a server
where the role may create databases and roles, start a server on
127.0.0.1:5432 that accepts user postgres, or install PostgreSQL so that a
throwaway cluster can be started:
  Debian/Ubuntu:  sudo apt-get install -y postgresql
  Fedora:         sudo dnf install -y postgresql-server
  macOS:          brew install postgresql@15
MSG
  exit 1
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/pgstate-pg.XXXXXX")"
as_owner=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi

cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }

# Ports below Linux's ephemeral range (32768+), so that no outgoing connection
# holds the port between the check and the bind; a port taken anyway is
# skipped and the next one tried.
port=""
for p in $(seq 25432 25532); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
  if "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$p -c unix_socket_directories=$dir -c max_connections=200" start >/dev/null 2>&1; then
    port=$p
    break
  fi
  grep -q "already in use" "$dir/server.log" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
done
[ -n "$port" ] || { echo "could not start a throwaway PostgreSQL cluster: no free port" >&2; exit 1; }
echo "started a throwaway PostgreSQL cluster on port $port ($bindir)" >&2

url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
status=0
run "$url" "$@" || status=$?
exit $status
