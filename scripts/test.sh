#!/usr/bin/env bash
# The whole test suite: formatting, the import rules of ARCHITECTURE.md,
# clippy (ssr and hydrate), the offline query data (.sqlx) against the
# migrations, unit and integration tests against a real PostgreSQL, and
# end-to-end tests in Chromium, and the OpenAPI contract (schemathesis).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh test
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export SQLX_OFFLINE=true
# scripts/build.sh compiles with this set; keeping it set for every cargo call
# stops leptos (which reads it at compile time) from being rebuilt in between.
export LEPTOS_OUTPUT_NAME=capstan
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

# The shared target folder outlives clones: drop test executables and
# incremental caches unused for two days, or the disk fills up over time.
# When less than 15 GiB is free (a build with its test executables takes
# about that much), drop every incremental cache and test executable older
# than an hour as well: they are rebuilt, the dependencies are kept.
if [ -d "$CARGO_TARGET_DIR/debug" ]; then
  find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -mtime +2 -delete 2>/dev/null || true
  find "$CARGO_TARGET_DIR/debug/incremental" -mindepth 1 -maxdepth 1 -mtime +2 -exec rm -rf {} + 2>/dev/null || true
  free_kib=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR==2 {print $4}')
  if [ "${free_kib:-0}" -lt $((15 * 1024 * 1024)) ]; then
    echo "only $((free_kib / 1024 / 1024)) GiB free: dropping incremental caches and old test executables"
    find "$CARGO_TARGET_DIR/debug/incremental" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
    find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -mmin +60 -delete 2>/dev/null || true
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "import rules (ARCHITECTURE.md)"
python3 scripts/check-imports.py

step "clippy (ssr)"
cargo clippy -p app -p server -p serving -p storage -p training --all-targets -- -D warnings
# the build tool alone, for the same reason as its tests below
cargo clippy -p frontend-split --all-targets -- -D warnings
step "clippy (hydrate, wasm32)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "build the site and server, as the run command does"
bash scripts/build.sh

bin="$CARGO_TARGET_DIR/debug/capstan"
if [ -z "${DATABASE_URL:-}" ]; then
  step "start a private PostgreSQL for the tests"
  pgdir="$(mktemp -d /tmp/capstan-test-XXXXXX)"
  chmod 755 "$pgdir"
  cleanup() { "$bin" --data-dir "$pgdir" db stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
  trap cleanup EXIT
  DATABASE_URL="$("$bin" --data-dir "$pgdir" db start)"
  export DATABASE_URL
fi

step "offline query data (.sqlx) matches the queries and the migrations"
# The query macros check every query against a migrated database and write
# what they learn; the result must equal the committed .sqlx/ (which builds
# use offline). Touching the crate makes the macros run again; clippy with
# the arguments of the clippy step above reuses what that step compiled.
"$bin" migrate >/dev/null
sqlx_now="$(mktemp -d)"
touch app/src/lib.rs
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$sqlx_now" cargo clippy -q -p app -p server -p serving -p storage -p training --all-targets -- -D warnings
if ! diff -r -q .sqlx "$sqlx_now"; then
  echo "error: .sqlx/ is out of date with the queries; regenerate it as the README's Layout section says" >&2
  exit 1
fi
rm -rf "$sqlx_now"

export MOTO_SERVER="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv/bin/moto_server"
export SCHEMATHESIS="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv/bin/st"
# the tools venv's python runs clients nobody here wrote (mlflow-skinny)
export TOOLS_PYTHON="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv/bin/python"

step "unit and integration tests"
cargo test -p app -p server -p serving -p storage -p training
# on its own: in the call above it would change the features of shared
# dependencies, and with them what the other calls have compiled
cargo test -p frontend-split

step "end-to-end tests (Chromium) and the OpenAPI contract (schemathesis)"
(cd end2end && CAPSTAN_BIN="$bin" LEPTOS_SITE_ROOT="$root/target/site" node run.mjs)
