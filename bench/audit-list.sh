#!/usr/bin/env bash
# Benchmark: GET /api/v1/audit-events?limit=50 at concurrency 32 over 100 000
# events, at the first page and at a deep cursor; prints requests/s, p50/p99,
# and the server's idle resident memory. Not part of the test suite.
# Needs: wrk (Debian package), psql, python3. Builds a release binary.
set -euo pipefail
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
EVENTS="${EVENTS:-100000}"
DURATION="${DURATION:-15s}"
RUST_LOG=warn source "$(dirname "$0")/lib.sh"
url="$("$bin" db start)"

echo "seeding $EVENTS audit events…"
psql -q "$url" <<SQL
insert into audit_event (audit_event_id, occurred_at, chain_key, chain_seq, prev_hash, hash, actor_label,
                         action, target_type, target_id, summary)
select gen_random_uuid(), now() - (g || ' seconds')::interval, 'bench', g, '\x00', '\x00', 'bench@example.com',
       'bench.event', 'thing', g::text, jsonb_build_object('n', g)
from generate_series(1, $EVENTS) g;
analyze audit_event;
SQL

base="http://127.0.0.1:$port/api/v1/audit-events?limit=50"
# walk to a deep cursor (~90% of the way) with 200-item pages
deep_cursor=$(python3 - "$port" "$token" "$EVENTS" <<'PY'
import json, sys, urllib.request
port, token, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
cursor, seen = None, 0
while seen < events * 0.9:
    url = f"http://127.0.0.1:{port}/api/v1/audit-events?limit=200" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    seen += len(page["items"])
    cursor = page["next_cursor"]
print(cursor)
PY
)

run() {
  local label="$1" target="$2" conns="${3:-32}"
  local out; out=$(wrk -t2 -c"$conns" -d"$DURATION" --latency -H "Authorization: Bearer $token" "$target")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  printf '%-12s requests/s %-10s p50 %-9s p99 %s\n' "$label" "$rps" "$p50" "$p99"
}
echo "concurrency 32, $DURATION each:"
run "healthz" "http://127.0.0.1:$port/healthz"
run "me (auth)" "http://127.0.0.1:$port/api/v1/me"
run "first page" "$base"
run "deep cursor" "$base&cursor=$deep_cursor"
echo "the same at concurrency 8 (latency without saturating 2 cores shared with PostgreSQL and wrk):"
run "first page" "$base" 8
run "deep cursor" "$base&cursor=$deep_cursor" 8
sleep 3
rss_kb=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
echo "idle server RSS: $((rss_kb / 1024)) MiB (PostgreSQL excluded)"
