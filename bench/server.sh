#!/usr/bin/env bash
# The platform server: registration of a 1,000,000-row source (seconds, and
# the server's peak RSS), then the latency of GET /api/v1/jobs under 200
# requests/s on loopback for 10 s (p50, p99), with 50 jobs recorded.
# usage: bench/server.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SLUICE_CACHE:-/var/cache/sluice}
D="$CACHE/bench/residents-1000000"
NS=sluice-bench
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
if [ ! -f "$D/residents.csv" ]; then
	mkdir -p "$D"
	"$SLUICE" demo-data --rows 1000000 --out "$D" --seed 1 >/dev/null
	"$SLUICE" dataset classify "$D/residents.csv" --out "$D/residents.classes.yaml"
fi
"$SLUICE" image build "$HERE/images/busybox" --namespace "$NS" --cache-dir "$CACHE" >/dev/null
(cd "$HERE" && go build -o "$WORK/apiload" ./bench/apiload)

"$SLUICE" server --data-dir "$WORK/data" --import-dir "$D" --listen 127.0.0.1:0 --namespace "$NS" >"$WORK/server.out" 2>"$WORK/server.err" &
PID=$!
for _ in $(seq 100); do
	grep -q "listening on" "$WORK/server.out" 2>/dev/null && break
	sleep 0.1
done
ADDR=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/server.out")
[ -n "$ADDR" ] || { cat "$WORK/server.err" >&2; exit 1; }
export SLUICE_SERVER=$ADDR SLUICE_TOKEN
SLUICE_TOKEN=$(cat "$WORK/data/admin.token")
hwm() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$PID/status"; }

echo
echo "== sluice server: registration of 1,000,000 residents ($(du -m "$D/residents.csv" | cut -f1) MB CSV) =="
before=$(hwm)
/usr/bin/time -f "%e" -o "$WORK/t" "$SLUICE" dataset register residents residents.csv --classes "$D/residents.classes.yaml" >/dev/null
echo "registration: $(cat "$WORK/t") s; server peak RSS $(hwm) MiB (before: $before MiB)"
/usr/bin/time -f "%e" -o "$WORK/t" "$SLUICE" dataset register residents "$D/residents.csv" --upload --classes "$D/residents.classes.yaml" >/dev/null 2>&1
echo "registration by streaming upload: $(cat "$WORK/t") s; server peak RSS $(hwm) MiB"

tenant=$("$SLUICE" tenant create bench -o json | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
"$SLUICE" user create bench-scientist --role scientist --tenant "$tenant" -o json >"$WORK/user.json"
sed -n 's/.*"secret": "\([^"]*\)".*/\1/p' "$WORK/user.json" >"$WORK/token"
SLUICE_TOKEN=$(cat "$WORK/token")
scn=$("$SLUICE" scenario apply --name bench --purpose bench --dataset residents:district_code \
	--until "$(date -d '+30 days' +%F)" -o json | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
SLUICE_TOKEN=$(cat "$WORK/data/admin.token") "$SLUICE" scenario approve "$scn" >/dev/null
mkdir -p "$WORK/code" && echo 'true' >"$WORK/code/run.sh"
for _ in $(seq 50); do
	"$SLUICE" job submit --scenario "$scn" --kind dev --image busybox --code "$WORK/code" -o json -- sh /code/run.sh >/dev/null
done
for id in $("$SLUICE" job list -o json | sed -n 's/.*"id": "\(job-[^"]*\)".*/\1/p'); do
	"$SLUICE" job wait "$id" >/dev/null
done
echo
echo "== sluice server: GET /api/v1/jobs (50 jobs) at 200 requests/s for 10 s, loopback =="
"$WORK/apiload" -url "$ADDR/api/v1/jobs" -token-file "$WORK/token" -rate 200 -duration 10s
