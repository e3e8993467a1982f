# Shared by the benchmarks: builds a release `capstan`, starts it in local
# mode on free ports with a fresh data dir (stopped and removed on exit), and
# creates a site admin with an API token. Sets: bin data port s3port server token.
# A function `before_serve`, if defined, runs just before the server starts.
# CAPSTAN_BENCH_BIN names a binary to measure instead of building one.
# Source it after `set -euo pipefail`; pass RUST_LOG in the environment.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export SQLX_OFFLINE=true
# scripts/build.sh compiles with this set; keeping it set for every cargo call
# stops leptos (which reads it at compile time) from being rebuilt in between.
export LEPTOS_OUTPUT_NAME=capstan

# CAPSTAN_BENCH_BIN measures another build instead (e.g. an earlier commit's, to compare)
if [ -n "${CAPSTAN_BENCH_BIN:-}" ]; then
  bin="$CAPSTAN_BENCH_BIN"
else
  cargo build --release -q -p server
  bin="$CARGO_TARGET_DIR/release/capstan"
fi
data="$(mktemp -d /tmp/capstan-bench-XXXXXX)"; chmod 755 "$data"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); s3port=$(free_port)
export CAPSTAN_DATA_DIR="$data" CAPSTAN_ADDR="127.0.0.1:$port" CAPSTAN_LOCAL_S3_ADDR="127.0.0.1:$s3port"
export RUST_LOG="${RUST_LOG:-warn}"
unset DATABASE_URL
# a benchmark may prepare the database before the server starts
if declare -F before_serve >/dev/null; then before_serve; fi
"$bin" serve >"$data/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; "$bin" db stop >/dev/null 2>&1 || true; rm -rf "$data"; }
trap cleanup EXIT
until grep -q "Capstan is running" "$data/server.log"; do
  kill -0 "$server" 2>/dev/null || { cat "$data/server.log"; exit 1; }
  sleep 0.2
done
echo "bench password 123" | "$bin" user create --email bench@example.com --site-admin >/dev/null
token="$("$bin" token create --email bench@example.com --name bench 2>/dev/null)"
