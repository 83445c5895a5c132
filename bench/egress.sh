#!/usr/bin/env bash
# Egress gate at scale: a 1,000,000-row product checked against a
# 1,000,000-row source, index build and check reported separately, with
# peak RSS; the OPA decision latency comes from the Go benchmark
# BenchmarkDecide (p50, p99) in `make bench`.
# usage: bench/egress.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SLUICE_CACHE:-/var/cache/sluice}/bench
D="$CACHE/residents-1000000"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ ! -f "$D/residents.csv" ]; then
	mkdir -p "$D"
	"$SLUICE" demo-data --rows 1000000 --out "$D" --seed 1 >/dev/null
	"$SLUICE" dataset classify "$D/residents.csv" --out "$D/residents.classes.yaml"
fi
# A row-level product the size of the source: district, birth year,
# education, income. The platform's 16 MiB / 1M-row product limits are
# raised in a copy of the policy so that the whole product is analysed.
awk -F, 'BEGIN { OFS = "," } NR == 1 { print "district,birth_year,education,monthly_income"; next } { print $8, substr($6, 1, 4), $9, $11 }' \
	"$D/residents.csv" >"$WORK/product.csv"
cp -r "$HERE/policy/rego" "$WORK/policy"
sed -i 's/"max_file_bytes": 16777216/"max_file_bytes": 268435456/; s/"max_rows": 1000000/"max_rows": 2000000/' "$WORK/policy/data.json"
set +e
/usr/bin/time -f "%e %M" -o "$WORK/time" "$SLUICE" egress check -v --policy "$WORK/policy" --source "$D/residents.csv" \
	--classes "$D/residents.classes.yaml" "$WORK/product.csv" >"$WORK/out" 2>"$WORK/err"
code=$?
set -e
if [ "$code" -ne 1 ]; then
	echo "bench: expected a deny (exit 1), got $code" >&2
	cat "$WORK/err" "$WORK/out" >&2
	exit 1
fi
index_s=$(grep 'msg="index built"' "$WORK/err" | sed 's/.*seconds=\([0-9.]*\).*/\1/')
check_s=$(grep 'msg=checked' "$WORK/err" | sed 's/.* seconds=\([0-9.]*\).*/\1/')
policy_ms=$(grep 'msg=checked' "$WORK/err" | sed 's/.*policy_ms=\([0-9.]*\).*/\1/')
read -r wall rss < <(tail -1 "$WORK/time")
echo
echo "== egress check: 1,000,000-row product against a 1,000,000-row source, 2 cores =="
printf "%-40s %8.2f s\n" "index build (keyed hashes, bitmaps)" "$index_s"
printf "%-40s %8.2f s\n" "check (parse, detectors, policy)" "$check_s"
printf "%-40s %8.3f ms\n" "  of which the policy decision" "$policy_ms"
printf "%-40s %8.2f s    (target <= 10 s)\n" "wall, whole command" "$wall"
printf "%-40s %8d MiB  (target <= 1024 MiB)\n" "peak RSS" "$((rss / 1024))"
echo "decision: $(head -1 "$WORK/out" | cut -d: -f2- | awk '{print $1}')"
