#!/usr/bin/env bash
# Masking to Parquet, Sluice side by side with DuckDB doing the same masking
# in SQL (bench/duckdb: read_csv -> salted sha256, year, substr -> Parquet)
# on the same 1,000,000-row residents CSV, 2 threads each; three interleaved
# runs, the median reported, with peak RSS. DuckDB is built once (cgo, its
# own module) into the cache, outside the repository.
# usage: bench/duckdb.sh path/to/sluice
set -euo pipefail
SLUICE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SLUICE_CACHE:-/var/cache/sluice}
D="$CACHE/bench/residents-1000000"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ ! -f "$D/residents.csv" ]; then
	mkdir -p "$D"
	"$SLUICE" demo-data --rows 1000000 --out "$D" --seed 1 >/dev/null
	"$SLUICE" dataset classify "$D/residents.csv" --out "$D/residents.classes.yaml"
fi
STAMP=$(cat "$HERE/duckdb/go.sum" "$HERE/duckdb/main.go" | sha256sum | cut -c1-16)
DUCK="$CACHE/bin/duckdb-mask-$STAMP"
if [ ! -x "$DUCK" ]; then
	echo "bench: building bench/duckdb (cgo, DuckDB's static library from the module proxy; a minute or two the first time)" >&2
	mkdir -p "$CACHE/bin"
	(cd "$HERE/duckdb" && go build -o "$DUCK" .)
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/key"
SALT=$(cat "$WORK/key")
sync

measure() { # LABEL CMD...: appends "seconds rss_kib" to $WORK/LABEL
	local label=$1
	shift
	rm -f "$WORK/out.parquet" "$WORK/out.arrow"
	/usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || {
		echo "bench: $label failed:" >&2
		cat "$WORK/err" >&2
		exit 1
	}
	cat "$WORK/time" >>"$WORK/$label"
}
for _ in 1 2 3; do
	measure duckdb "$DUCK" "$D/residents.csv" "$SALT" "$WORK/out.parquet"
	measure sluice-parquet "$SLUICE" dataset mask --source "$D/residents.csv" --classes "$D/residents.classes.yaml" \
		--profile "$HERE/duckdb-profile.yaml" --key "$WORK/key" --out "$WORK/out.parquet"
	measure sluice-arrow "$SLUICE" dataset mask --source "$D/residents.csv" --classes "$D/residents.classes.yaml" \
		--profile "$HERE/duckdb-profile.yaml" --key "$WORK/key" --out "$WORK/out.arrow"
done
median() { sort -n -k1 "$WORK/$1" | sed -n 2p; }
echo
echo "== masking 1,000,000 residents to Parquet: Sluice and DuckDB (same masking), median of 3 =="
printf "%-32s %8s %10s\n" "run" "seconds" "peak RSS"
for l in duckdb sluice-parquet sluice-arrow; do
	read -r s rss < <(median "$l")
	printf "%-32s %8s %6s MiB\n" "$l" "$s" "$((rss / 1024))"
done
read -r ds _ < <(median duckdb)
read -r ss _ < <(median sluice-parquet)
awk -v d="$ds" -v s="$ss" 'BEGIN { printf "sluice / duckdb to Parquet: %.2fx (target: <= 1.00x)\n", s / d }'
