#!/usr/bin/env bash
# Benchmark of the model registry at the size of a large registry: 1 000
# models × 100 versions (2 tags per model and per version, a `champion`
# alias per model). At concurrency 32 and 8 for a fixed time: get a version,
# resolve an alias, one model's versions (50 per page), the model list
# (first and 16th page), each through the native API and the MLflow-
# compatible API; then versions created by 8 clients (each audited); and
# the roofs on this machine: /healthz and a PostgreSQL single-row read
# (pgbench). Prints requests/s, p50 and p99, each as a share of the roofs,
# and the server's idle and peak resident memory. Not part of the test
# suite. Needs: wrk (Debian package), psql, pgbench, python3 and the test
# tools venv (boto3; scripts/test.sh installs it). Builds a
# release binary. Usage: bash bench/registry.sh  (MODELS, VERSIONS, DURATION;
# ONLY=writes for the writes alone). Also prints the CPU each written
# version costs the server and PostgreSQL.
set -euo pipefail
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
MODELS="${MODELS:-1000}"
VERSIONS="${VERSIONS:-100}"
DURATION="${DURATION:-10s}"
RUST_LOG=warn source "$(dirname "$0")/lib.sh"
url="$("$bin" db start)"
api="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $token")

curl -fsS -X POST "${auth[@]}" -H 'content-type: application/json' -d '{"slug":"bench","name":"Bench"}' \
  "$api/api/v1/teams" >/dev/null
echo "seeding $MODELS models × $VERSIONS versions…"
psql -q -v ON_ERROR_STOP=1 "$url" <<SQL
insert into model (model_id, team_id, name, tags, created_by, last_number)
select gen_random_uuid(), t.team_id, 'model-' || lpad(g::text, 5, '0'),
       jsonb_build_object('owner', 'group-' || (g % 10), 'task', 'classification'), u.user_id, $VERSIONS
from team t, app_user u, generate_series(1, $MODELS) g
where t.slug = 'bench' and u.email = 'bench@example.com';
insert into model_version (version_id, model_id, number, source, artifact_uri, parameters, metrics, tags, created_by)
select gen_random_uuid(), m.model_id, n, 'artifact', 's3://capstan/models/bench/' || m.name || '/' || n || '/model.tar.gz',
       jsonb_build_object('C', (n % 7)::text), jsonb_build_object('auc', random(), 'loss', random()),
       jsonb_build_object('stage', case when n % 10 = 0 then 'prod' else 'dev' end, 'owner', 'bench'), m.created_by
from model m, generate_series(1, $VERSIONS) n;
-- what a registration writes besides the version (builds before migration registration_writes did it by
-- trigger: the same rows, so a CAPSTAN_BENCH_BIN of an earlier build seeds alike)
update model set version_count = $VERSIONS;
insert into model_version_metric (version_id, team_id, name, value)
select v.version_id, m.team_id, e.key, (e.value)::double precision
from model_version v join model m on m.model_id = v.model_id, jsonb_each(v.metrics) e
on conflict do nothing;
insert into model_alias (model_id, alias, version_id, updated_by)
select v.model_id, 'champion', v.version_id, v.created_by from model_version v where v.number = $VERSIONS;
analyze;
SQL
# an artifact that exists, for the writes, uploaded through the local S3 as a training job's is (which
# keeps its ETag: an object dropped into the folder by hand is hashed again by every HEAD)
py="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv/bin/python"  # boto3: installed by scripts/test.sh
"$py" - "$s3port" "$data/s3/credentials" <<'PY'
import os, sys, boto3
key, secret = open(sys.argv[2]).read().strip().split(":")
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
s3.put_object(Bucket="capstan", Key="models/bench/model.tar.gz", Body=os.urandom(4096))
PY

mid=$(( MODELS / 2 ))
name="model-$(printf '%05d' "$mid")"
model_id=$(psql -tA "$url" -c "select model_id from model where name = '$name'")
version_id=$(psql -tA "$url" -c "select version_id from model_version where model_id = '$model_id' and number = $(( VERSIONS / 2 ))")
writer_model=$(psql -tA "$url" -c "select model_id from model where name = 'model-00001'")
b64() { python3 -c 'import base64,json,sys; print(base64.urlsafe_b64encode(json.dumps(json.loads(sys.argv[1]),separators=(",",":")).encode()).decode().rstrip("="))' "$1"; }
page16_name="model-$(printf '%05d' $(( 15 * 50 )))"
native_cursor=$(b64 "\"$page16_name\"")
mlflow_cursor=$(b64 "[\"bench\",\"$page16_name\"]")

declare -A RPS P50 P99
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000} printf "%.2f", v}' <<<"$1"; }
run() {
  local label="$1" target="$2" conns="$3" script="${4:-}"
  local args=(-t2 -c"$conns" -d"$DURATION" --latency "${auth[@]}")
  [ -n "$script" ] && args+=(-s "$script")
  local out; out=$(wrk "${args[@]}" "$target")
  RPS[$label@$conns]=$(awk '/Requests\/sec/{printf "%d", $2}' <<<"$out")
  P50[$label@$conns]=$(ms "$(awk '$1=="50%"{print $2}' <<<"$out")")
  P99[$label@$conns]=$(ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
  local errors; errors=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  [ -z "$errors" ] || echo "  ($label: $errors non-2xx answers)" >&2
}
peak=0
rss() { awk '/VmRSS/{print int($2/1024)}' "/proc/$server/status"; }
sample() { local r; r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; return 0; }
sleep 2
idle=$(rss)

# the roofs: the server's cheapest route, and the database's cheapest read
run healthz "$api/healthz" 32
pg_tps=$(pgbench -n -S -c 32 -j 2 -T "${DURATION%s}" "$url" 2>/dev/null | awk '/^tps/{printf "%d", $3}') || pg_tps=0
if [ "${pg_tps:-0}" = 0 ]; then
  pgbench -i -q -s 1 "$url" >/dev/null 2>&1
  pg_tps=$(pgbench -n -S -c 32 -j 2 -T "${DURATION%s}" "$url" | awk '/^tps/{printf "%d", $3}')
fi

reads=(
  "get version (native)|$api/api/v1/model-versions/$version_id"
  "get version (mlflow)|$api/api/2.0/mlflow/model-versions/get?name=$name&version=$(( VERSIONS / 2 ))"
  "resolve alias (native)|$api/api/v1/models/$model_id/aliases/champion"
  "resolve alias (by name)|$api/api/v1/teams/bench/models/$name/aliases/champion"
  "resolve alias (mlflow)|$api/api/2.0/mlflow/registered-models/alias?name=$name&alias=champion"
  "versions of a model (native)|$api/api/v1/models/$model_id/versions?limit=50"
  "versions of a model (mlflow)|$api/api/2.0/mlflow/model-versions/search?filter=name%3D%27$name%27&max_results=50"
  "models page 1 (native)|$api/api/v1/teams/bench/models?limit=50"
  "models page 16 (native)|$api/api/v1/teams/bench/models?limit=50&cursor=$native_cursor"
  "models page 1 (mlflow)|$api/api/2.0/mlflow/registered-models/search?max_results=50"
  "models page 16 (mlflow)|$api/api/2.0/mlflow/registered-models/search?max_results=50&page_token=$mlflow_cursor"
)
# ONLY=writes measures the writes alone (the reads take most of the run)
[ "${ONLY:-}" = writes ] && reads=()
for conns in 32 8; do
  for entry in "${reads[@]}"; do
    run "${entry%%|*}" "${entry#*|}" "$conns"
    sample
  done
done
# CPU seconds used so far by the server, and by PostgreSQL (its processes, and those it reaped)
tck=$(getconf CLK_TCK)
cpu_of() { awk -v c="$2" '{t = $14 + $15; if (c) t += $16 + $17; print t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
server_cpu() { cpu_of "$server" 0; }
pg_cpu() {
  local pm t; pm=$(head -1 "$data/postgres/data/postmaster.pid")
  t=$(cpu_of "$pm" 1)
  for p in $(pgrep -P "$pm"); do t=$(( t + $(cpu_of "$p" 0) )); done
  echo "$t"
}
writes="$data/write.lua"
cat >"$writes" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"artifact_uri": "s3://capstan/models/bench/model.tar.gz", "metrics": {"auc": 0.9}}'
LUA
# one write by hand first: a refusal is shown, not averaged away
body='{"artifact_uri": "s3://capstan/models/bench/model.tar.gz", "metrics": {"auc": 0.9}}'
code=$(curl -s -o "$data/write.out" -w '%{http_code}' -X POST "${auth[@]}" -H 'content-type: application/json' \
  -d "$body" "$api/api/v1/models/$writer_model/versions")
[ "$code" = 201 ] || { echo "a registration was refused ($code): $(cat "$data/write.out")" >&2; exit 1; }
before=$(psql -tA "$url" -c "select count(*) from model_version")
server_before=$(server_cpu); pg_before=$(pg_cpu)
run "create versions" "$api/api/v1/models/$writer_model/versions" 8 "$writes"
sample
# the same writes spread over 8 models of the team (numbering is per model; the audit chain per team)
spread="$data/write-spread.lua"
{
  cat "$writes"
  echo "models = {$(psql -tA "$url" -c "select string_agg(quote_literal(model_id::text), ',') from (select model_id from model order by name limit 8) m" | tr "'" '"')}"
  cat <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/models/" .. models[(counter % #models) + 1] .. "/versions")
end
LUA
} >"$spread"
run "create versions (8 models)" "$api/api/v1/models/$writer_model/versions" 8 "$spread"
sample
server_after=$(server_cpu); pg_after=$(pg_cpu)
after=$(psql -tA "$url" -c "select count(*) from model_version")
audited=$(psql -tA "$url" -c "select count(*) from audit_event where action = 'model_version.registered'")

echo
echo "roofs: /healthz ${RPS[healthz@32]} req/s (p99 ${P99[healthz@32]} ms); PostgreSQL single-row read ${pg_tps} tps (pgbench -S, 32 clients)"
printf '%-30s %5s %10s %8s %8s %9s %9s\n' operation conns "req/s" "p50 ms" "p99 ms" "/healthz" "/pg read"
for conns in 32 8; do
  for entry in "${reads[@]}"; do
    label="${entry%%|*}"; k="$label@$conns"
    printf '%-30s %5s %10s %8s %8s %8d%% %8d%%\n' "$label" "$conns" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" \
      $(( 100 * ${RPS[$k]} / ${RPS[healthz@32]} )) $(( 100 * ${RPS[$k]} / (pg_tps > 0 ? pg_tps : 1) ))
  done
done
for label in "create versions" "create versions (8 models)"; do
  k="$label@8"
  printf '%-30s %5s %10s %8s %8s %8d%% %8d%%\n' "$label" 8 "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" \
    $(( 100 * ${RPS[$k]} / ${RPS[healthz@32]} )) $(( 100 * ${RPS[$k]} / (pg_tps > 0 ? pg_tps : 1) ))
done
echo "versions written: $(( after - before )) ($audited audit events for registrations)"
per_version() { awk -v t="$1" -v n="$(( after - before ))" -v c="$tck" 'BEGIN { printf "%.3f", n ? 1000 * t / c / n : 0 }'; }
echo "CPU per version written: server $(per_version $(( server_after - server_before ))) ms, PostgreSQL $(per_version $(( pg_after - pg_before ))) ms"
echo "server RSS: idle ${idle} MiB, peak ${peak} MiB (PostgreSQL excluded)"
echo "targets (2 cores): get version ≥ 15000 req/s p99 ≤ 10 ms @32; alias ≥ 30000 req/s p99 ≤ 5 ms;"
echo "                   version search and list pages ≥ 2000 req/s p99 ≤ 25 ms; writes ≥ 2000 versions/s"
