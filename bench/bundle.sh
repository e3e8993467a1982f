#!/usr/bin/env bash
# Prints what a browser downloads on a first visit: the main module (wasm +
# JS), the loader of the page chunks and the CSS, then, for every page, the
# chunks its first full load adds (the server names them in the page's
# <link rel=preload>), raw and compressed (the server sends the .br file to
# browsers that accept brotli, else the .gz), and how long the heaviest page
# takes to arrive at 10 and 50 Mbit/s.
# Usage: bash bench/bundle.sh   (builds the site first unless NO_BUILD=1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ "${NO_BUILD:-}" = 1 ] || bash scripts/build.sh site >/dev/null
python3 - "$root/target/site" <<'PY'
import json, os, statistics, sys

site = sys.argv[1]
pkg = os.path.join(site, "pkg")
hashes = dict(line.split(": ", 1) for line in open(os.path.join(site, "hash.txt")).read().split("\n") if line)

def sizes(name):
    path = os.path.join(pkg, name)
    return [os.path.getsize(p) for p in (path, path + ".gz", path + ".br")]

common = [f"capstan.{hashes['wasm']}.wasm", f"capstan.{hashes['js']}.js",
          f"__wasm_split.{hashes['split']}.js", f"capstan.{hashes['css']}.css"]
print(f"{'file':44s} {'raw':>9s} {'gzip':>9s} {'brotli':>9s}")
base = [0, 0, 0]
for name in common:
    s = sizes(name)
    base = [a + b for a, b in zip(base, s)]
    print(f"{name:44s} {s[0]:9d} {s[1]:9d} {s[2]:9d}")
print(f"{'every page (main module, loader, CSS)':44s} {base[0]:9d} {base[1]:9d} {base[2]:9d}")
manifest = json.load(open(os.path.join(pkg, f"__wasm_split_manifest.{hashes['manifest']}.json")))
rows = []
for split, files in manifest.items():
    page = split.strip("_").rsplit("_", 1)[0].removesuffix("_view")
    total = list(base)
    for f in files:
        total = [a + b for a, b in zip(total, sizes(f + ".wasm"))]
    rows.append((total[2], page, len(files), total))
rows.sort()
print(f"\n{'first load of a page (+ its chunks)':36s} {'files':>7s} {'raw':>9s} {'gzip':>9s} {'brotli':>9s}")
for _, page, n, t in rows:
    print(f"{page:36s} {n:7d} {t[0]:9d} {t[1]:9d} {t[2]:9d}")
br = [r[0] for r in rows]
print(f"\nfirst load, brotli: median {statistics.median(br)/1024:.0f} KB, heaviest page "
      f"({rows[-1][1]}) {br[-1]/1024:.0f} KB; {sum(b <= 400*1024 for b in br)} of {len(br)} pages <= 400 KB")
print(f"heaviest page: {br[-1]*8/50e6:.2f} s at 50 Mbit/s, {br[-1]*8/10e6:.2f} s at 10 Mbit/s")
PY
