#!/usr/bin/env bash
# The login storm: durable logins against logins kept in memory only.
#
#   bash bench/storm.sh [--rounds N] [--duration SECONDS] [--connections N] [--pin] [--profile SECONDS] [--prefill SECONDS] [--caddy BINARY]
#
# Builds Caddy with the plugin (cmd/caddy) into bench/out/ and runs one
# Caddy with two wechat_auth sites (bench/storm.Caddyfile): the memory
# store without and with `persist` (the file in bench/out/storm/, on the
# repository's disk), each logging in against its own wechat_mock site of
# the same Caddy. wrk POSTs /wechat/login with a fresh code per request
# (bench/storm.lua), every code a new user. Rounds are interleaved (each
# runs both sites, in alternating order), and the report gives every
# round's ratio persist/memory of logins/s, their median, and Caddy's CPU
# time per login (utime+stime from /proc/<pid>/stat).
#
# --pin puts Caddy on CPU 0 (wrk on CPU 1); by default neither is pinned,
# as in production. --profile N takes an N-second CPU profile of Caddy
# (admin /debug/pprof/profile) during each site's first round, into
# bench/out/storm-memory.pprof and storm-persist.pprof. --caddy runs a
# Caddy built elsewhere (with cmd/caddy's modules) instead of building
# one. --prefill N first storms each site for N seconds, untimed, so
# that the rounds run against stores that already hold many sessions (at
# 3,000-4,000 logins/s, 300 s come near the default limit of a million).
# Where perf can read syscall tracepoints (Debian's linux-perf, as
# root), each persisted round also reports how long the kernel took over
# each of Caddy's fdatasync calls (p50/p99 and count): on a shared
# virtual disk that latency swings by ten times from hour to hour, and
# it, not Caddy, sets the ratio then (docs/login-storm.md). Each round
# also reports the bytes written to the disk under the persist file in
# it (/sys/class/block/<dev>/stat), and the summary those of all rounds
# per persisted login: the journal's and the folds'. Results:
# stdout and bench/out/storm.tsv.
set -euo pipefail

ROUNDS=5
DURATION=6
CONNECTIONS=32
PIN=
PROFILE=0
PREFILL=0
CADDY=
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--connections) CONNECTIONS=$2; shift 2 ;;
	--pin) PIN=1; shift ;;
	--profile) PROFILE=$2; shift 2 ;;
	--prefill) PREFILL=$2; shift 2 ;;
	--caddy) CADDY=$2; shift 2 ;;
	-h|--help) sed -n '2,32p' "$0"; exit 0 ;;
	*) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
log() { printf '==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

CADDY_CPU=() LOAD_CPU=()
if [ -n "$PIN" ]; then CADDY_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1); fi

if [ -z "$CADDY" ]; then
	log "building caddy into $OUT/"
	go build -o "$OUT/caddy" ./cmd/caddy
	CADDY=$OUT/caddy
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
require_free_ports 18181 18182 18183 18184 12029

export STORM_DIR="$PWD/$OUT/storm"
rm -rf "$STORM_DIR"
mkdir -p "$STORM_DIR"
XDG_CONFIG_HOME="$STORM_DIR/xdg" XDG_DATA_HOME="$STORM_DIR/xdg" \
	"${CADDY_CPU[@]}" "$CADDY" run --config bench/storm.Caddyfile --adapter caddyfile 2>"$OUT/storm-caddy.log" &
CADDY_PID=$!
PIDS+=("$CADDY_PID")

login() { curl -fs -o /dev/null -H 'Content-Type: application/json' -d "{\"code\":\"$2\"}" "http://127.0.0.1:$1/wechat/login"; }
for _ in $(seq 100); do
	if login 18181 warm-0 2>/dev/null; then break; fi
	sleep 0.1
done
login 18182 warm-0 || { echo "caddy did not start; see $OUT/storm-caddy.log" >&2; exit 1; }

sticks() { awk '{ print $15 }' "/proc/$1/stat"; }
# Bytes written to the block device under the persist file, from its
# /sys/class/block/<dev>/stat (field 7, 512-byte sectors): the fold's
# writes as well as the journal's. Empty where it cannot be read.
DISK_STAT=/sys/class/block/$(basename "$(df --output=source "$STORM_DIR" 2>/dev/null | tail -1)")/stat
written() { [ -r "$DISK_STAT" ] && awk '{ printf "%.0f\n", $7 * 512 }' "$DISK_STAT"; }
port_of() { case "$1" in memory) echo 18181 ;; persist) echo 18182 ;; esac; }

storm() { # site seconds prefix -> wrk output
	"${LOAD_CPU[@]}" wrk -t1 "-c$CONNECTIONS" "-d${2}s" --latency -s bench/storm.lua "http://127.0.0.1:$(port_of "$1")" -- "$3"
}

if [ "$PREFILL" -gt 0 ]; then
	for s in memory persist; do
		n=$(storm "$s" "$PREFILL" p | awk '/requests in/ { print $1 }')
		log "prefill: $n sessions made on the $s site in ${PREFILL}s"
	done
fi
log "warm-up: 2s per site"
storm memory 2 w >/dev/null
storm persist 2 w >/dev/null

RAW="$OUT/storm.tsv"
printf 'round\tsite\tlogins_per_s\tlogins\tnon2xx\terrors\tp50_us\tp99_us\tcpu_us_per_login\tsys_us_per_login\tdisk_bytes\n' >"$RAW"
log "$ROUNDS rounds x 2 sites x ${DURATION}s, $CONNECTIONS connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"
to_us() {
	awk -v v="$1" 'BEGIN { n = v + 0
		if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'
}
# The kernel's time in each fdatasync of pid during secs: "p50/p99 ms (n)".
PERF=
if command -v perf >/dev/null && perf stat -e syscalls:sys_enter_fdatasync true >/dev/null 2>&1; then PERF=1; fi
sync_latency() { # pid secs
	perf record -q -o "$OUT/storm-perf.data" -e syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync -p "$1" -- sleep "$2" >/dev/null 2>&1 || true
	perf script -i "$OUT/storm-perf.data" 2>/dev/null | awk '
		{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) t = substr($i, 1, length($i) - 1) }
		/sys_enter_fdatasync/ { s[$2] = t; next }
		/sys_exit_fdatasync/ && ($2 in s) { printf "%.3f\n", (t - s[$2]) * 1000; delete s[$2] }' |
		sort -n | awk '{ v[NR] = $1 } END { q = int(NR * 0.99); if (q < 1) q = 1
			if (NR) printf "%.2f/%.2f ms (%d)", v[int((NR + 1) / 2)], v[q], NR; else printf "none" }'
}
PROFILE_PIDS=()
for r in $(seq "$ROUNDS"); do
	order=(memory persist)
	[ $((r % 2)) -eq 0 ] && order=(persist memory)
	for s in "${order[@]}"; do
		if [ "$PROFILE" -gt 0 ] && [ "$r" -eq 1 ]; then
			(sleep 1; curl -fs -o "$OUT/storm-$s.pprof" "http://localhost:12029/debug/pprof/profile?seconds=$PROFILE") &
			PROFILE_PIDS+=("$!")
		fi
		t0=$(ticks "$CADDY_PID") s0=$(sticks "$CADDY_PID") w0=$(written)
		lat_pid=
		if [ -n "$PERF" ] && [ "$s" = persist ]; then
			sync_latency "$CADDY_PID" "$DURATION" >"$OUT/storm-sync.txt" &
			lat_pid=$!
		fi
		out=$(storm "$s" "$DURATION" "r$r$s")
		lat=
		if [ -n "$lat_pid" ]; then wait "$lat_pid"; lat="  fdatasync p50/p99 $(cat "$OUT/storm-sync.txt")"; fi
		t1=$(ticks "$CADDY_PID") s1=$(sticks "$CADDY_PID") w1=$(written)
		disk=$(( ${w1:-0} - ${w0:-0} ))
		rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
		n=$(awk '/requests in/ { print $1 }' <<<"$out")
		non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
		errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
		p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
		p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
		cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')
		sys=$(awk -v d=$((s1 - s0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$rps" "$n" "${non2xx:-0}" "${errs:-0}" "$p50" "$p99" "$cpu" "$sys" "$disk" >>"$RAW"
		printf '  round %d  %-8s %9s logins/s  p50 %7sus  p99 %8sus  caddy %6sus CPU/login (%sus system)  disk %4s MB  non-2xx %s%s\n' \
			"$r" "$s" "$rps" "$p50" "$p99" "$cpu" "$sys" $((disk >> 20)) "${non2xx:-0}" "$lat" >&2
	done
done
for pid in "${PROFILE_PIDS[@]}"; do wait "$pid"; done

awk -F'\t' 'NR > 1 { v[$1, $2] = $3; c[$1, $2] = $9; if ($1 > R) R = $1; bad += $5 + $6; disk += $11; if ($2 == "persist") durable += $4 }
	END {
		for (r = 1; r <= R; r++) { q[r] = v[r, "persist"] / v[r, "memory"]; printf "round %d: persist %.0f / memory %.0f logins/s = %.3f (CPU/login %.1f / %.1f us)\n", r, v[r, "persist"], v[r, "memory"], q[r], c[r, "persist"], c[r, "memory"] }
		n = R
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (q[j] < q[i]) { t = q[i]; q[i] = q[j]; q[j] = t }
		med = (n % 2) ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
		printf "persist/memory logins/s: median %.3f, range %.3f-%.3f over %d rounds (target >= 0.8)\n", med, q[1], q[n], n
		# The persisted site writes during the other site rounds too (its
		# folds run in the background): the bytes of all rounds count.
		if (disk) printf "disk: %.0f MB written in all rounds, %.0f bytes per persisted login\n", disk / 1048576, disk / durable
		if (bad) { printf "error: %d failed logins: the figures are not valid\n", bad; exit 1 }
	}' "$RAW"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
