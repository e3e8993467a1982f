#!/usr/bin/env bash
# Benchmark of the endpoints gateway (issue 16, point 13). The upstream is
# bench/echo.rs, a minimal HTTP/1.1 echo server (standard library only), so
# what is measured is Capstan's gateway: an endpoint with 10 production
# variants, every variant's process being that echo server. Prints, in one
# run, through the gateway and direct to the upstream:
#   - concurrency 64 for DURATION: requests/s, p50, p99 (closed loop);
#   - 1 000 requests/s, paced: p50, p99 and the gateway's added p99;
#   - Capstan's idle resident memory with the 10 variants registered,
#     before any request and after the runs.
# Targets on this 2-core machine: ≥ 20 000 requests/s with p99 < 100 ms at
# concurrency 64; ≤ 1 ms added at p99 at 1 000 requests/s; ≤ 60 MB idle.
# The load generator shares the 2 cores with Capstan, PostgreSQL and the
# upstream. Not part of the test suite. Needs psql and rustc; builds a
# release binary. Usage: bash bench/endpoints.sh   (DURATION, default 10 s)
set -euo pipefail
DURATION="${DURATION:-10}"
# the serving worker's advisory lock (server/src/workers.rs, SERVING_LOCK):
# held by this script, so no Capstan process starts model processes and the
# variants' processes are the echo server registered below
SERVING_LOCK=109270149562371
before_serve() {
  url="$("$bin" db start)"
  "$bin" migrate >/dev/null
  psql -q "$url" -c "select pg_advisory_lock($SERVING_LOCK)" -c "select pg_sleep(86400)" >/dev/null 2>&1 &
  lock_holder=$!
  until psql -tA "$url" -c "select count(*) from pg_locks where locktype = 'advisory' and granted" | grep -q '^1$'; do
    sleep 0.2
  done
}
RUST_LOG=warn source "$(dirname "$0")/lib.sh"
tools="$data/bench-tools"; mkdir -p "$tools"
rustc -O --edition 2024 -o "$tools/echo" "$root/bench/echo.rs"
upstream_port=$(free_port)
"$tools/echo" serve "$upstream_port" &
upstream=$!
trap 'kill "$upstream" "$lock_holder" 2>/dev/null || true; cleanup' EXIT
api="http://127.0.0.1:$port"
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"slug":"bench","name":"Bench"}' "$api/api/v1/teams" >/dev/null
# one model version (rows only: nothing is unpacked, the serving worker does not run here)
version=$(psql -tA -v ON_ERROR_STOP=1 "$url" <<'SQL' | grep -E '^[0-9a-f-]{36}$'
with m as (
  insert into model (model_id, team_id, name, created_by, last_number, version_count)
  select gen_random_uuid(), t.team_id, 'echo', u.user_id, 1, 1 from team t, app_user u
  where t.slug = 'bench' and u.email = 'bench@example.com' returning model_id, created_by)
insert into model_version (version_id, model_id, number, source, artifact_uri, created_by)
select gen_random_uuid(), m.model_id, 1, 'artifact', 's3://capstan/models/bench/echo/model.tar.gz', m.created_by from m
returning version_id;
SQL
)
variants=$(python3 -c 'import json,sys; print(json.dumps([{"name": f"v{i}", "version_id": sys.argv[1], "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1} for i in range(10)]))' "$version")
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"name\":\"echo\",\"variants\":$variants}" "$api/api/v1/teams/bench/endpoints" >/dev/null
# every variant's process is the echo server, healthy
psql -q -v ON_ERROR_STOP=1 "$url" <<SQL
insert into endpoint_instance (endpoint_id, variant, ordinal, address, status)
select ev.endpoint_id, ev.name, 0, '127.0.0.1:$upstream_port', 'Healthy'
from endpoint_variant ev join endpoint e on e.endpoint_id = ev.endpoint_id where e.engine_name = 'bench-echo';
SQL
gateway=(127.0.0.1:"$port" /endpoints/bench-echo/invocations)
direct=(127.0.0.1:"$upstream_port" /invocations)
auth="Authorization: Bearer $token"
sleep 2
idle_kb=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
# warm-up (token and route caches, connections to the upstream)
"$tools/echo" load "${gateway[@]}" 8 2 0 "$auth" >/dev/null

echo "10 variants behind the gateway; the upstream is bench/echo.rs"
echo "concurrency 64, ${DURATION} s, closed loop:"
printf '  %-9s ' gateway; "$tools/echo" load "${gateway[@]}" 64 "$DURATION" 0 "$auth"
printf '  %-9s ' direct; "$tools/echo" load "${direct[@]}" 64 "$DURATION" 0
echo "1 000 requests/s paced over 16 connections, ${DURATION} s:"
g=$("$tools/echo" load "${gateway[@]}" 16 "$DURATION" 1000 "$auth")
d=$("$tools/echo" load "${direct[@]}" 16 "$DURATION" 1000)
printf '  %-9s %s\n  %-9s %s\n' gateway "$g" direct "$d"
p99() { awk '{for (i = 1; i <= NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$1"; }
awk -v g="$(p99 "$g")" -v d="$(p99 "$d")" 'BEGIN { printf "  added by the gateway at p99: %.2f ms\n", g - d }'
# the gateway's counts reach the rollups every 10 s; idle again after that
sleep 12
after_kb=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
echo "Capstan RSS with 10 variants registered (PostgreSQL and the upstream excluded):"
echo "  idle before any request: $((idle_kb / 1024)) MiB; idle after the runs: $((after_kb / 1024)) MiB"
