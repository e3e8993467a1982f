#!/usr/bin/env bash
# Installs whatever Capstan needs that this machine lacks, and skips the rest.
# Usage: scripts/setup.sh run|test   (test also installs Chromium and npm packages)
set -euo pipefail
mode="${1:-run}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

apt_missing=()
have_initdb() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }
have_initdb || apt_missing+=(postgresql)
command -v cc >/dev/null || apt_missing+=(build-essential)
command -v pkg-config >/dev/null || apt_missing+=(pkg-config)
command -v brotli >/dev/null || apt_missing+=(brotli)
# local mode runs training scripts in a bubblewrap sandbox
command -v bwrap >/dev/null || apt_missing+=(bubblewrap)
# node runs wasm-opt (binaryen from npm, below) and the end-to-end tests
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
if [ "$mode" = test ]; then
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || apt_missing+=(chromium)
  python3 -c "import venv, ensurepip" 2>/dev/null || apt_missing+=(python3-venv)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
fi

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WB_VERSION"; then
  log "installing wasm-bindgen-cli $WB_VERSION"
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# wasm-opt shrinks the browser bundle. Debian's binaryen (108) corrupts the
# reference-types tables that Rust's wasm output uses now; npm's build of a
# current binaryen does not.
tools="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}"
BINARYEN_VERSION=132.0.0
if ! "$tools/binaryen/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "installing binaryen $BINARYEN_VERSION (wasm-opt) into $tools/binaryen"
  mkdir -p "$tools/binaryen"
  (cd "$tools/binaryen" && npm install --no-audit --no-fund --no-save "binaryen@$BINARYEN_VERSION" >/dev/null)
fi
# esbuild minifies the bundle's JavaScript (wasm-bindgen's glue, the chunk
# loader) and the stylesheet.
ESBUILD_VERSION=0.25.12
if [ "$("$tools/esbuild/node_modules/.bin/esbuild" --version 2>/dev/null)" != "$ESBUILD_VERSION" ]; then
  log "installing esbuild $ESBUILD_VERSION into $tools/esbuild"
  mkdir -p "$tools/esbuild"
  (cd "$tools/esbuild" && npm install --no-audit --no-fund --no-save "esbuild@$ESBUILD_VERSION" >/dev/null)
fi

if [ "$mode" = test ]; then
  # The AWS API emulator for AWS-mode tests, in a venv of its own.
  venv="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv"
  MOTO_VERSION=5.2.1
  if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    log "installing moto[server] $MOTO_VERSION (AWS API emulator) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  fi
  # The OpenAPI contract checker the end-to-end suite runs against the API.
  SCHEMATHESIS_VERSION=4.32.5
  if ! "$venv/bin/st" --version 2>/dev/null | grep -q " $SCHEMATHESIS_VERSION\$"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION (OpenAPI contract tests) into $venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  # MLflow's own client, for the MLflow-compatible registry API test.
  MLFLOW_VERSION=3.18.0
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mlflow-skinny') != '$MLFLOW_VERSION')" 2>/dev/null; then
    log "installing mlflow-skinny $MLFLOW_VERSION (MLflow's client) into $venv"
    "$venv/bin/pip" install -q "mlflow-skinny==$MLFLOW_VERSION"
  fi
  # The Standard Webhooks reference library, for the webhook receiver of the tests.
  STANDARDWEBHOOKS_VERSION=1.0.0
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('standardwebhooks') != '$STANDARDWEBHOOKS_VERSION')" 2>/dev/null; then
    log "installing standardwebhooks $STANDARDWEBHOOKS_VERSION (webhook signatures) into $venv"
    "$venv/bin/pip" install -q "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
  fi
  # The AWS SDK for Python, whose SageMaker Runtime client invokes endpoints in the tests.
  BOTO3_VERSION=1.44.8
  if ! "$venv/bin/python" -c "import boto3, sys; sys.exit(boto3.__version__ != '$BOTO3_VERSION')" 2>/dev/null; then
    log "installing boto3 $BOTO3_VERSION (SageMaker Runtime client) into $venv"
    "$venv/bin/pip" install -q "boto3==$BOTO3_VERSION"
  fi
  # GrowthBook's statistics engine: the reference the experiments' statistics are checked against.
  GBSTATS_VERSION=0.8.0
  if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('gbstats') != '$GBSTATS_VERSION')" 2>/dev/null; then
    log "installing gbstats $GBSTATS_VERSION (A/B statistics reference) into $venv"
    "$venv/bin/pip" install -q "gbstats==$GBSTATS_VERSION"
  fi
  if [ ! -d end2end/node_modules/playwright-core ]; then
    log "installing end-to-end test packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
