#!/usr/bin/env bash
# Prints what a browser downloads on a first visit: the wasm, JS and CSS of
# the site as scripts/build.sh made it, raw and compressed (the server sends
# the .br file to browsers that accept brotli, else the .gz), and how long
# that takes to arrive at 10 and 50 Mbit/s.
# Usage: bash bench/bundle.sh   (builds the site first unless NO_BUILD=1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ "${NO_BUILD:-}" = 1 ] || bash scripts/build.sh site >/dev/null
pkg="$root/target/site/pkg"
printf '%-36s %10s %10s %10s\n' file raw gzip brotli
total_raw=0 total_gz=0 total_br=0
for f in "$pkg"/capstan.*.wasm "$pkg"/capstan.*.js "$pkg"/capstan.*.css; do
  raw=$(stat -c %s "$f"); gz=$(stat -c %s "$f.gz"); br=$(stat -c %s "$f.br")
  printf '%-36s %10d %10d %10d\n' "$(basename "$f")" "$raw" "$gz" "$br"
  total_raw=$((total_raw + raw)); total_gz=$((total_gz + gz)); total_br=$((total_br + br))
done
printf '%-36s %10d %10d %10d\n' "first load (wasm + JS + CSS)" "$total_raw" "$total_gz" "$total_br"
awk -v b="$total_br" 'BEGIN { printf "brotli transfer: %.0f KB; %.2f s at 50 Mbit/s, %.2f s at 10 Mbit/s\n", b/1024, b*8/50e6, b*8/10e6 }'
