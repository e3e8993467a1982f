#!/usr/bin/env bash
# Benchmark: the training reconciler with JOBS (default 1000) in-flight
# SageMaker jobs on the SageMaker stand-in (moto completes every job at once,
# so it cannot hold jobs in flight). Prints each cycle's time and AWS calls:
# quiet cycles (nothing changed) and busy ones (1% of the jobs moved on).
# Not part of the test suite; runs in the test build's (dev) profile with its
# own private PostgreSQL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export SQLX_OFFLINE=true LEPTOS_OUTPUT_NAME=capstan
cargo run -q -p server --example reconcile_bench
