#!/usr/bin/env bash
# Benchmark: dataset versions on local mode's S3 endpoint.
#  1. register a prefix of 100 000 small objects: time to ready and S3 list calls
#  2. upload a 1 GB file through presigned multipart URLs: throughput and the
#     server's peak RSS before and after (the data never passes through Capstan)
#  3. page the manifest at a deep cursor: p50/p99 of sequential requests
# Not part of the test suite. Builds a release binary; uses the moto venv's
# Python (boto3, requests) that the test command installs.
set -euo pipefail
OBJECTS="${OBJECTS:-100000}"
UPLOAD_MB="${UPLOAD_MB:-1024}"
py="${CAPSTAN_TOOLS_DIR:-$HOME/.cache/capstan-tools}/venv/bin/python"
[ -x "$py" ] || bash "$(dirname "$0")/../scripts/setup.sh" test >/dev/null
RUST_LOG="warn,app::versions=info" source "$(dirname "$0")/lib.sh"

"$py" - "$port" "$s3port" "$token" "$data" "$server" "$OBJECTS" "$UPLOAD_MB" <<'PY'
import base64, json, os, re, statistics, sys, time, concurrent.futures as cf
import boto3, requests
port, s3port, token, data, pid, objects, upload_mb = sys.argv[1:8]
objects, upload_mb = int(objects), int(upload_mb)
api = f"http://127.0.0.1:{port}/api/v1"
h = {"Authorization": f"Bearer {token}"}
key, secret = open(f"{data}/s3/credentials").read().strip().split(":")
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}", aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")

def rss():
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024

def call(method, path, **kw):
    r = requests.request(method, api + path, headers=h, **kw)
    r.raise_for_status()
    return r.json()

call("POST", "/teams", json={"slug": "bench", "name": "Bench"})
ds = call("POST", "/teams/bench/datasets", json={"name": "many"})["id"]

print(f"writing {objects} objects…", flush=True)
with cf.ThreadPoolExecutor(32) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket="capstan", Key=f"many/part-{i:06d}.csv", Body=f"i\n{i}\n"), range(objects)))

t0 = time.monotonic()
v = call("POST", f"/datasets/{ds}/versions", json={"source_uri": "s3://capstan/many/"})
while v["status"] == "scanning":
    time.sleep(0.2)
    v = call("GET", f"/dataset-versions/{v['id']}")
took = time.monotonic() - t0
log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{data}/server.log").read())
calls = re.findall(rf"version={v['id']}.*?list_calls=(\d+)", log)
print(f"1. register prefix: {v['object_count']} objects, status {v['status']}, {took:.1f} s to ready; "
      f"{calls[-1] if calls else '?'} S3 list calls")

size = upload_mb * 1024 * 1024
print(f"2. uploading {upload_mb} MiB through presigned parts (4 in parallel)…", flush=True)
before = rss()
up = call("POST", f"/datasets/{ds}/uploads", json={"files": [{"path": "big.bin", "size": size}]})
plan, vid = up["files"][0], up["version"]["id"]
urls = call("POST", f"/dataset-versions/{vid}/upload/parts",
            json={"path": "big.bin", "parts": list(range(1, plan["part_count"] + 1))})
chunk = os.urandom(plan["part_size"])
def put(u):
    n = u["number"]
    body = chunk[: min(plan["part_size"], size - (n - 1) * plan["part_size"])]
    r = requests.put(u["url"], data=body)
    r.raise_for_status()
    return {"number": n, "etag": r.headers["ETag"]}
t0 = time.monotonic()
with cf.ThreadPoolExecutor(4) as ex:
    parts = list(ex.map(put, urls))
call("POST", f"/dataset-versions/{vid}/upload/complete", json={"files": [{"path": "big.bin", "parts": parts}]})
took = time.monotonic() - t0
after = rss()
print(f"   {size / took / 1e6:.0f} MB/s ({took:.1f} s, {plan['part_count']} parts of {plan['part_size'] >> 20} MiB); "
      f"server RSS {before[0]} MiB before, {after[0]} MiB after, peak {after[1]} MiB")

deep = base64.urlsafe_b64encode(json.dumps(f"part-{int(objects * 0.9):06d}.csv").encode()).decode().rstrip("=")
url = f"{api}/dataset-versions/{v['id']}/manifest?limit=50&cursor={deep}"
session = requests.Session()
lat = []
for _ in range(500):
    t = time.perf_counter()
    r = session.get(url, headers=h)
    lat.append((time.perf_counter() - t) * 1000)
    assert r.status_code == 200 and len(r.json()["items"]) == 50
lat.sort()
print(f"3. manifest page at a deep cursor (90% in, limit 50), 500 sequential requests: "
      f"p50 {statistics.median(lat):.2f} ms, p99 {lat[int(len(lat) * 0.99) - 1]:.2f} ms")
PY
