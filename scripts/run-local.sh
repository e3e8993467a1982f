#!/usr/bin/env bash
# Sets up what is missing, builds Capstan, and runs it in local mode at
# http://127.0.0.1:3000 (its own PostgreSQL under ./.capstan, no AWS needed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh run
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
bash scripts/build.sh
exec "$CARGO_TARGET_DIR/debug/capstan" --site-root "$root/target/site" serve
