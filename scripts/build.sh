#!/usr/bin/env bash
# Builds what `capstan serve` needs: the server binary (debug profile, as the
# run command serves it) and the site under target/site — the browser bundle
# built with the size-optimised `wasm-release` profile, split into a main
# module and a chunk per page, bound by wasm-bindgen, shrunk by wasm-opt,
# named by content hash and precompressed (gzip, brotli) so the server can
# hand out long-lived cached files.
#
# This replaces `cargo leptos build`: the same steps, without the 25-minute
# install of cargo-leptos on a fresh machine.
# Usage: scripts/build.sh [site|server|all]   (default: all)
set -euo pipefail
what="${1:-all}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/capstan-target}"
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"
# leptos reads this at compile time (file names of the bundle); keep it the
# same for every cargo call so leptos is not rebuilt in between.
export LEPTOS_OUTPUT_NAME=capstan

log() { printf '\033[1;34m[build]\033[0m %s\n' "$*"; }

build_site() {
  log "browser bundle (wasm-release profile)"
  cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
  cargo build -p frontend-split --bin capstan-split
  local out="$root/target/site.new" pkg wasm_opt
  pkg="$out/pkg"
  rm -rf "$out"
  mkdir -p "$pkg"
  # One chunk per page (app/src/routes.rs), fetched when the page is first
  # shown; the main module keeps the shell, the router and shared code.
  log "split into a main module and a chunk per page"
  "$CARGO_TARGET_DIR/debug/capstan-split" split \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm" "$pkg" "$out/main.wasm" capstan >/dev/null
  wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
    --out-dir "$pkg" --out-name capstan "$out/main.wasm"
  rm "$out/main.wasm"
  mv "$pkg/capstan_bg.wasm" "$pkg/capstan.wasm"
  log "wasm-opt -Oz"
  # binaryen from npm, installed by scripts/setup.sh (Debian's is too old).
  # Rust's wasm32 target emits these proposals by default; binaryen must accept them.
  wasm_opt="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/binaryen/node_modules/.bin/wasm-opt"
  find "$pkg" -name '*.wasm' -print0 | xargs -0 -P "$(nproc)" -I{} "$wasm_opt" -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue -o {} {} 2>&1 |
    { grep -v 'unknown name subsection' || true; }
  log "minify JavaScript and CSS"
  local esbuild="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/esbuild/node_modules/.bin/esbuild" js
  for js in "$pkg/capstan.js" "$pkg"/__wasm_split.*.js; do
    "$esbuild" --minify --format=esm --log-level=warning "$js" --outfile="$js.min"
    mv "$js.min" "$js"
  done
  "$esbuild" --minify --log-level=warning style/main.css --outfile="$pkg/capstan.css"
  cp -r public/. "$out/"
  # Content-hashed names: a changed file gets a new name, so browsers may
  # cache every hashed file forever. The server reads the names from hash.txt
  # (the main module, its chunks and their loader share one hash).
  "$CARGO_TARGET_DIR/debug/capstan-split" hash "$pkg" capstan >"$out/hash.txt"
  local hash
  hash="$(sha256sum "$pkg/capstan.css" | cut -c1-16)"
  mv "$pkg/capstan.css" "$pkg/capstan.$hash.css"
  printf 'css: %s\n' "$hash" >>"$out/hash.txt"
  find "$out" -type f \( -name '*.js' -o -name '*.wasm' -o -name '*.css' -o -name '*.svg' \) -print0 |
    while IFS= read -r -d '' file; do
      gzip -9 -k -n "$file"
      brotli -q 11 -k "$file"
    done
  rm -rf "$root/target/site"
  mv "$out" "$root/target/site"
  log "site ready in target/site ($(du -sh "$root/target/site" | cut -f1))"
}

build_server() {
  log "server (debug profile)"
  cargo build -p server --bin capstan
}

case "$what" in
  site) build_site ;;
  server) build_server ;;
  all) build_site; build_server ;;
  *) echo "usage: $0 [site|server|all]" >&2; exit 2 ;;
esac
