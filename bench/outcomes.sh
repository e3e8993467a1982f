#!/usr/bin/env bash
# Benchmark of outcome ingestion (issue: rollouts and A/B analysis, point 4):
# `POST /api/v1/endpoints/{id}/outcomes` with batches of 1 000 outcomes, every
# one new (a fresh request id), half named by gateway invocation ids
# (`<uuid v7>.<variant>`), half by ids of the caller's own with `variant`,
# from 4 clients for a fixed time; then the same batches again (all
# duplicates). Prints outcomes/s, p50 and p99 per batch, and how many rows
# were written. Target: ≥ 10 000 outcomes/s. Not part of the test suite.
# Needs: wrk (Debian package), psql, python3. Builds a release binary.
# Usage: bash bench/outcomes.sh  (DURATION, default 10s)
set -euo pipefail
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
DURATION="${DURATION:-10s}"
RUST_LOG=warn source "$(dirname "$0")/lib.sh"
url="$("$bin" db start)"
api="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $token")
call() { curl -fsS -X "$1" "${auth[@]}" -H 'content-type: application/json' ${3:+-d "$3"} "$api/api/v1$2"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# an endpoint of two variants (its processes need not serve: outcomes name variants only)
call POST /teams '{"slug":"bench","name":"Bench"}' >/dev/null
model=$(call POST /teams/bench/models '{"name":"ranker"}' | json id)
mkdir -p "$data/s3/data/capstan/models/bench"
head -c 4096 /dev/urandom >"$data/s3/data/capstan/models/bench/model.tar.gz"
version=$(call POST "/models/$model/versions" '{"artifact_uri":"s3://capstan/models/bench/model.tar.gz"}' | json id)
variant() { echo "{\"name\":\"$1\",\"version_id\":\"$version\",\"instance_type\":\"ml.m5.large\",\"instance_count\":1,\"weight\":1}"; }
endpoint=$(call POST /teams/bench/endpoints "{\"name\":\"ab\",\"variants\":[$(variant control),$(variant treatment)]}" | json id)

batches="$data/outcomes.lua"
cat >"$batches" <<'LUA'
-- each request a batch of 1 000 new outcomes; ids unique per thread and request
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local items = {}
  for i = 1, 1000 do
    local n = string.format("%02x%06x%04x", tid, counter, i)
    if i % 2 == 0 then
      -- an invocation id of the gateway: a UUIDv7 (time 0193…) and the variant
      items[i] = '{"request_id":"01938a2e-0000-7000-8000-' .. n .. '.treatment","metric":"conversion","value":1}'
    else
      items[i] = '{"request_id":"order-' .. n .. '","variant":"control","metric":"conversion","value":' ..
        (i % 3) .. '}'
    end
  end
  return wrk.format(nil, nil, nil, '{"outcomes":[' .. table.concat(items, ",") .. ']}')
end
LUA
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000} printf "%.1f", v}' <<<"$1"; }
run() {
  local out; out=$(wrk -t4 -c4 -d"$DURATION" --latency "${auth[@]}" -s "$1" "$api/api/v1/endpoints/$endpoint/outcomes")
  local errors; errors=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  [ -z "$errors" ] || echo "  ($errors non-2xx answers)" >&2
  printf '%-28s %10d outcomes/s   p50 %6s ms   p99 %6s ms per batch\n' "$2" \
    "$(awk '/Requests\/sec/{printf "%d", $2 * 1000}' <<<"$out")" \
    "$(ms "$(awk '$1=="50%"{print $2}' <<<"$out")")" "$(ms "$(awk '$1=="99%"{print $2}' <<<"$out")")"
}
echo
run "$batches" "new outcomes (batches of 1000)"
written=$(psql -tA "$url" -c "select count(*) from endpoint_outcome")
# the same batches again: the clients restart their counters, so every outcome is a duplicate
run "$batches" "duplicates (batches of 1000)"
again=$(psql -tA "$url" -c "select count(*) from endpoint_outcome")
echo "rows written: $written, then $(( again - written )) more from the repeated batches (those already sent are duplicates)"
echo "per-minute sums: $(psql -tA "$url" -c "select sum(n) from endpoint_outcome_minute") outcomes in $(psql -tA "$url" -c "select count(*) from endpoint_outcome_minute") rows"
echo "target: ≥ 10 000 outcomes/s in batches"
