#!/usr/bin/env bash
# Masking throughput and memory: sluice against the pandas baseline on the
# same 1,000,000-row residents CSV, then sluice's peak RSS at 5,000,000 rows.
# usage: bench/mask.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
CACHE=${SLUICE_CACHE:-/var/cache/sluice}/bench
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$CACHE"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# data: generated once and cached (deterministic for the seed)
data() { # rows
	local dir="$CACHE/residents-$1"
	if [ ! -f "$dir/residents.csv" ]; then
		echo "bench: generating $1 residents into $dir" >&2
		mkdir -p "$dir"
		"$SLUICE" demo-data --rows "$1" --out "$dir" --seed 1 >/dev/null
		"$SLUICE" dataset classify "$dir/residents.csv" --out "$dir/residents.classes.yaml"
	fi
	echo "$dir"
}

# measure LABEL CMD... : prints "seconds peak_rss_kib"
measure() {
	local label=$1
	shift
	/usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/$label.err" || {
		echo "bench: $label failed:" >&2
		cat "$WORK/$label.err" >&2
		exit 1
	}
	cat "$WORK/time"
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/key"
D1=$(data 1000000)
D5=$(data 5000000)
SIZE=$(du -m "$D1/residents.csv" | cut -f1)

echo
echo "== masking 1,000,000 residents (${SIZE} MB CSV), prod profile, 2 cores =="
read -r s_arrow rss_arrow < <(measure sluice-arrow "$SLUICE" dataset mask --source "$D1/residents.csv" \
	--classes "$D1/residents.classes.yaml" --key "$WORK/key" --out "$WORK/m.arrow")
read -r s_csv rss_csv < <(measure sluice-csv "$SLUICE" dataset mask --source "$D1/residents.csv" \
	--classes "$D1/residents.classes.yaml" --key "$WORK/key" --out "$WORK/m.csv")
read -r s_pd rss_pd < <(measure pandas "$PYTHON" "$HERE/pandas_mask.py" "$D1/residents.csv" "$WORK/key" "$WORK/p.csv")
rows_s() { awk -v s="$1" 'BEGIN { printf "%.0f", 1000000 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
printf "%-34s %8s %12s %10s %8s\n" "run" "seconds" "rows/s" "peak RSS" "vs pandas"
printf "%-34s %8s %12s %8s MiB %8sx\n" "sluice CSV -> Arrow IPC" "$s_arrow" "$(rows_s "$s_arrow")" "$((rss_arrow / 1024))" "$(ratio "$s_pd" "$s_arrow")"
printf "%-34s %8s %12s %8s MiB %8sx\n" "sluice CSV -> CSV" "$s_csv" "$(rows_s "$s_csv")" "$((rss_csv / 1024))" "$(ratio "$s_pd" "$s_csv")"
printf "%-34s %8s %12s %8s MiB %8s\n" "pandas CSV -> CSV (apply + hmac)" "$s_pd" "$(rows_s "$s_pd")" "$((rss_pd / 1024))" "1.0x"
echo "target: sluice >= 20x faster than pandas; peak RSS < 512 MiB"

echo
echo "== memory does not grow with rows: sluice at 5,000,000 residents =="
read -r s5 rss5 < <(measure sluice-5m "$SLUICE" dataset mask --source "$D5/residents.csv" \
	--classes "$D5/residents.classes.yaml" --key "$WORK/key" --out "$WORK/m5.arrow")
printf "%-34s %8s %12s %8s MiB\n" "sluice CSV -> Arrow IPC, 5M rows" "$s5" "$(awk -v s="$s5" 'BEGIN { printf "%.0f", 5000000 / s }')" "$((rss5 / 1024))"
