#!/usr/bin/env bash
# Two builds in the same login storm: is a change to the durable login
# faster, slower, or inside the noise?
#
#   bash bench/storm-ab.sh [--rounds N] [--duration SECONDS] [--connections N] OLD NEW
#
# OLD and NEW are Caddy binaries built from cmd/caddy, or git revisions
# (built here, in a temporary worktree). Each runs bench/storm.Caddyfile
# in a Caddy of its own (OLD on its ports, NEW on them plus 10000), and wrk
# storms the persisted site of one, then the other, alternating which goes
# first from round to round: the fsync latency of a shared disk swings by
# ten times within a minute (docs/login-storm.md), so only builds measured
# turn by turn, seconds apart, can be compared. The report gives each
# round's NEW/OLD ratio of logins/s, their median, and each side's Caddy
# CPU per login (utime+stime from /proc/<pid>/stat). Results: stdout and
# bench/out/storm-ab.tsv.
set -euo pipefail

ROUNDS=12
DURATION=2
CONNECTIONS=32
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--connections) CONNECTIONS=$2; shift 2 ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	-*) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || { echo "usage: bash bench/storm-ab.sh [flags] OLD NEW (see --help)" >&2; exit 2; }

cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
log() { printf '==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
. bench/lib.sh

# binary_of REV-OR-PATH NAME: a binary for it.
binary_of() {
	if [ -x "$1" ] && [ -f "$1" ]; then
		echo "$1"
		return
	fi
	local wt="$OUT/ab-src-$2"
	git worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
	git worktree add --detach "$wt" "$1" >/dev/null 2>&1 || { echo "$1 is neither a binary nor a git revision" >&2; exit 2; }
	log "building $1 into $OUT/ab-$2"
	(cd "$wt" && go build -o "../ab-$2" ./cmd/caddy) >&2
	git worktree remove --force "$wt"
	echo "$OUT/ab-$2"
}
BIN_OLD=$(binary_of "$1" old)
BIN_NEW=$(binary_of "$2" new)

require_free_ports 18181 18182 18183 18184 12029 28181 28182 28183 28184 22029
declare -A PID PORT
for side in old new; do
	dir="$PWD/$OUT/ab-$side.d"
	rm -rf "$dir"
	mkdir -p "$dir"
	if [ "$side" = old ]; then
		cp bench/storm.Caddyfile "$dir/Caddyfile"
		bin=$BIN_OLD PORT[$side]=18182
	else
		sed 's/1818\([1-4]\)/2818\1/g; s/12029/22029/' bench/storm.Caddyfile >"$dir/Caddyfile"
		bin=$BIN_NEW PORT[$side]=28182
	fi
	STORM_DIR="$dir" XDG_CONFIG_HOME="$dir" XDG_DATA_HOME="$dir" \
		"$bin" run --config "$dir/Caddyfile" --adapter caddyfile 2>"$dir/caddy.log" &
	PID[$side]=$!
	PIDS+=("$!")
done
for side in old new; do
	for _ in $(seq 100); do
		if curl -fs -o /dev/null -H 'Content-Type: application/json' -d '{"code":"warm-0"}' \
			"http://127.0.0.1:${PORT[$side]}/wechat/login"; then continue 2; fi
		sleep 0.1
	done
	echo "caddy ($side) did not start; see $OUT/ab-$side.d/caddy.log" >&2
	exit 1
done

storm() { # side seconds prefix -> wrk output
	wrk -t1 "-c$CONNECTIONS" "-d${2}s" --latency -s bench/storm.lua "http://127.0.0.1:${PORT[$1]}" -- "$3"
}
log "warm-up: 2s each"
storm old 2 w >/dev/null
storm new 2 w >/dev/null

RAW="$OUT/storm-ab.tsv"
printf 'round\tside\tlogins_per_s\tlogins\tnon2xx\tcpu_us_per_login\n' >"$RAW"
log "$ROUNDS rounds x 2 builds x ${DURATION}s, $CONNECTIONS connections, persisted site"
for r in $(seq "$ROUNDS"); do
	order=(old new)
	[ $((r % 2)) -eq 0 ] && order=(new old)
	for side in "${order[@]}"; do
		t0=$(ticks "${PID[$side]}")
		out=$(storm "$side" "$DURATION" "r$r")
		t1=$(ticks "${PID[$side]}")
		rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
		n=$(awk '/requests in/ { print $1 }' <<<"$out")
		bad=$(awk '/Non-2xx or 3xx responses:/ { b = $NF } /Socket errors:/ { gsub(",", ""); b += $4 + $6 + $8 + $10 } END { print b + 0 }' <<<"$out")
		cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$side" "$rps" "$n" "$bad" "$cpu" >>"$RAW"
	done
done

awk -F'\t' 'NR > 1 { v[$1, $2] = $3; c[$1, $2] = $6; if ($1 > R) R = $1; bad += $5 }
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		line = "NEW/OLD by round:"
		for (r = 1; r <= R; r++) { q[r] = v[r, "new"] / v[r, "old"]; line = line sprintf(" %.2f", q[r]); o[r] = v[r, "old"]; w[r] = v[r, "new"]; co[r] = c[r, "old"]; cn[r] = c[r, "new"] }
		print line
		printf "NEW/OLD logins/s: median %.3f over %d rounds (OLD median %.0f, NEW median %.0f logins/s)\n", median(q, R), R, median(o, R), median(w, R)
		printf "Caddy CPU per persisted login: OLD median %.1f us, NEW median %.1f us\n", median(co, R), median(cn, R)
		if (bad) { printf "error: %d failed logins: the figures are not valid\n", bad; exit 1 }
	}' "$RAW"
