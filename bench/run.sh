#!/usr/bin/env bash
# The gateway benchmark: one command, from the repository root or anywhere.
#
#   bash bench/run.sh [--rounds N] [--duration SECONDS] [--connections N] [--warmup SECONDS] [--caddy BINARY] [--profile SECONDS]
#
# Builds Caddy with the plugin (cmd/caddy), the Go upstream and the token
# helper into bench/out/, starts the upstream, a redis-server and one Caddy
# with six sites (bench/Caddyfile), and drives them with wrk:
#
#   plain         GET  :18080/          reverse_proxy
#   wechat_auth   GET  :18081/          wechat_auth (valid token) + reverse_proxy
#   wechat_redis  GET  :18084/          the same with the Redis store (local cache on)
#   redis_nocache GET  :18086/          the same with the local cache off (cache_ttl 0)
#   forward_auth  GET  :18082/          forward_auth to the upstream's /auth + reverse_proxy
#   decrypt       POST :18081/wechat/decrypt  (a sealed phone number, legacy form)
#
# Caddy runs on CPU 0 with GOMAXPROCS=1; wrk, the upstream and Redis share
# CPU 1.
# Every site runs beside a run of plain reverse_proxy (a pair, in
# alternating order; every round has a pair of each site, in a rotated
# order), and the table gives medians over rounds, each as a ratio to the
# plain run of its pair, plus Caddy's CPU time per request
# (utime+stime from /proc/<pid>/stat, over the requests wrk completed) and
# its ratio to plain's in the pair: on a shared machine the steady figure.
# --caddy runs a Caddy built elsewhere (with cmd/caddy's modules) instead
# of building one. --profile N takes an N-second CPU profile of Caddy
# (admin /debug/pprof/profile) during each site's first round, into
# bench/out/run-<site>.pprof. Results: stdout, and bench/out/results.md,
# bench/out/raw.tsv. For the pass-through's cost without this host's noise,
# count instructions instead: bash bench/instructions.sh.
set -euo pipefail

ROUNDS=5
DURATION=10
CONNECTIONS=32
WARMUP=2
CADDY=
PROFILE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--connections) CONNECTIONS=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--caddy) CADDY=$2; shift 2 ;;
	--profile) PROFILE=$2; shift 2 ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} (Debian packages)"
	SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "go is required" >&2; exit 1; }

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
	CADDY_CPU=(taskset -c 0)
	LOAD_CPU=(taskset -c 1)
else
	log "warning: $NCPU CPU(s) or no taskset: running unpinned, results are less telling"
	CADDY_CPU=()
	LOAD_CPU=()
fi

# --- build ---------------------------------------------------------------
log "building caddy, upstream, mint into $OUT/"
if [ -z "$CADDY" ]; then
	go build -o "$OUT/caddy" ./cmd/caddy
	CADDY=$OUT/caddy
fi
go build -o "$OUT/upstream" ./bench/upstream
go build -o "$OUT/mint" ./bench/mint

# --- start ---------------------------------------------------------------
# shellcheck source=bench/lib.sh
. bench/lib.sh
require_free_ports 18080 18081 18082 18083 18084 18085 18086 18090 18379 12019

GOMAXPROCS=1 "${LOAD_CPU[@]}" "$OUT/upstream" -addr 127.0.0.1:18090 2>"$OUT/upstream.log" &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
"${LOAD_CPU[@]}" redis-server --port 18379 --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$OUT" --logfile "$PWD/$OUT/redis.log" &
PIDS+=("$!")
# Keep Caddy's state (autosave, certificates) out of the user's home.
XDG_CONFIG_HOME="$PWD/$OUT/xdg" XDG_DATA_HOME="$PWD/$OUT/xdg" GOMAXPROCS=1 \
	"${CADDY_CPU[@]}" "$CADDY" run --config bench/Caddyfile --adapter caddyfile 2>"$OUT/caddy.log" &
CADDY_PID=$!
PIDS+=("$CADDY_PID")

for _ in $(seq 100); do
	if curl -fs -o /dev/null http://127.0.0.1:18080/ 2>/dev/null; then break; fi
	sleep 0.1
done
curl -fs -o /dev/null http://127.0.0.1:18080/ || { echo "caddy did not start; see $OUT/caddy.log" >&2; exit 1; }

"$OUT/mint" -out "$OUT" >&2
TOKEN=$(cat "$OUT/token")
TOKEN_REDIS=$(cat "$OUT/token_redis")
curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN_REDIS" http://127.0.0.1:18086/ ||
	{ echo "the Redis site with the cache off does not answer 200" >&2; exit 1; }

# --- measure -------------------------------------------------------------
SITES=(plain wechat_auth wechat_redis redis_nocache forward_auth decrypt)

run_wrk() { # site seconds -> wrk output
	local args=(-t1 "-c$CONNECTIONS" "-d${2}s" --latency)
	case "$1" in
	# The same request everywhere: plain forwards the header it does not check.
	plain) args+=(-H "Authorization: Bearer $TOKEN" http://127.0.0.1:18080/) ;;
	wechat_auth) args+=(-H "Authorization: Bearer $TOKEN" http://127.0.0.1:18081/) ;;
	wechat_redis) args+=(-H "Authorization: Bearer $TOKEN_REDIS" http://127.0.0.1:18084/) ;;
	redis_nocache) args+=(-H "Authorization: Bearer $TOKEN_REDIS" http://127.0.0.1:18086/) ;;
	forward_auth) args+=(-H "Authorization: Bearer $TOKEN" http://127.0.0.1:18082/) ;;
	decrypt) args+=(-s "$OUT/decrypt.lua" http://127.0.0.1:18081/wechat/decrypt) ;;
	esac
	"${LOAD_CPU[@]}" wrk "${args[@]}"
}

# to_us converts a wrk latency ("812.00us", "1.20ms", "1.01s") to µs.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
		else if (v ~ /m$/) print n * 60e6; else if (v ~ /s$/) print n * 1e6; else print n }'
}

log "warm-up: ${WARMUP}s per site"
for s in "${SITES[@]}"; do run_wrk "$s" "$WARMUP" >/dev/null; done

RAW="$OUT/raw.tsv"
printf 'round\tsite\trps\trequests\tnon2xx\terrors\tp50_us\tp99_us\tcpu_us_per_req\tupstream_cpu_us_per_req\tpair\n' >"$RAW"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OTHERS=("${SITES[@]:1}")
log "$ROUNDS rounds x ${#OTHERS[@]} pairs (plain beside each site) x ${DURATION}s, $CONNECTIONS connections; load average $LOAD_BEFORE"

# measure site round pair: one wrk run, one line of raw.tsv.
measure() {
	local s=$1 r=$2 pair=$3
	if [ "$PROFILE" -gt 0 ] && [ ! -e "$OUT/run-$s.pprof.taken" ]; then
		touch "$OUT/run-$s.pprof.taken"
		(sleep 1; curl -fs -o "$OUT/run-$s.pprof" "http://localhost:12019/debug/pprof/profile?seconds=$PROFILE") &
		PROFILE_PIDS+=("$!")
	fi
	local t0 u0 t1 u1 out rps reqs non2xx errs p50 p99 cpu ucpu
	t0=$(ticks "$CADDY_PID"); u0=$(ticks "$UPSTREAM_PID")
	out=$(run_wrk "$s" "$DURATION")
	t1=$(ticks "$CADDY_PID"); u1=$(ticks "$UPSTREAM_PID")
	rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
	errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
	p50=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
	p99=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
	cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz / n * 1e6 }')
	ucpu=$(awk -v d=$((u1 - u0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz / n * 1e6 }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$rps" "$reqs" "${non2xx:-0}" "${errs:-0}" "$p50" "$p99" "$cpu" "$ucpu" "$pair" >>"$RAW"
	printf '  round %d  %-13s %10s req/s  p50 %7sus  caddy %6sus CPU/req  upstream %6sus CPU/req  non-2xx %s\n' \
		"$r" "$s" "$rps" "$p50" "$cpu" "$ucpu" "${non2xx:-0}" >&2
}

# Every site is measured right beside a run of plain reverse_proxy (a
# pair, in alternating order), and compared with that run only: on a
# machine whose load changes by the second, the two runs of a pair see
# the same neighbours. The sites take turns in a rotated order.
rm -f "$OUT"/run-*.pprof.taken
PROFILE_PIDS=()
for r in $(seq "$ROUNDS"); do
	for i in $(seq 0 $((${#OTHERS[@]} - 1))); do
		s=${OTHERS[$(((i + r - 1) % ${#OTHERS[@]}))]}
		pair="$r.$i"
		if [ $(((i + r) % 2)) -eq 0 ]; then
			measure plain "$r" "$pair"; measure "$s" "$r" "$pair"
		else
			measure "$s" "$r" "$pair"; measure plain "$r" "$pair"
		fi
	done
done
rm -f "$OUT"/run-*.pprof.taken

for pid in "${PROFILE_PIDS[@]}"; do wait "$pid"; done

# --- report --------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $2 == s { print $c }' "$RAW"; }

# pair_ratios site column: for each pair of site, its figure in that
# column over plain's in the same pair.
pair_ratios() {
	awk -F'\t' -v s="$1" -v c="$2" 'NR > 1 && $2 == "plain" { p[$11] = $c } NR > 1 && $2 == s { v[$11] = $c }
		END { for (k in v) print v[k] / p[k] }' "$RAW"
}
# ratio_per_round: the median over pairs of (site req/s / plain req/s),
# which cancels slow phases of a noisy machine.
ratio_per_round() { if [ "$1" = plain ]; then echo 1; else pair_ratios "$1" 3 | median; fi; }
# cpu_ratio_per_round: the same for Caddy's CPU time per request.
cpu_ratio_per_round() { if [ "$1" = plain ]; then echo 1; else pair_ratios "$1" 9 | median; fi; }
# cpu_ratio_range: the lowest and highest of those CPU ratios.
cpu_ratio_range() {
	if [ "$1" = plain ]; then echo 1-1; return; fi
	pair_ratios "$1" 9 | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.4f-%.4f", lo, hi }'
}

declare -A RPS P50 P99 CPU UCPU BAD RATIO CRATIO CRANGE
for s in "${SITES[@]}"; do
	RPS[$s]=$(col "$s" 3 | median)
	P50[$s]=$(col "$s" 7 | median)
	P99[$s]=$(col "$s" 8 | median)
	CPU[$s]=$(col "$s" 9 | median)
	UCPU[$s]=$(col "$s" 10 | median)
	RATIO[$s]=$(ratio_per_round "$s")
	CRATIO[$s]=$(cpu_ratio_per_round "$s")
	CRANGE[$s]=$(cpu_ratio_range "$s")
	BAD[$s]=$(col "$s" 5 | awk '{ n += $1 } END { print n + 0 }')
	BAD[$s]=$((BAD[$s] + $(col "$s" 6 | awk '{ n += $1 } END { print n + 0 }')))
done

{
	echo "| site | req/s (median) | vs plain reverse_proxy | per-pair ratio (median) | Caddy CPU µs/req | plain's CPU / this one's, per pair: median (range) | upstream CPU µs/req | p50 µs | p99 µs | failed |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for s in "${SITES[@]}"; do
		awk -v s="$s" -v rps="${RPS[$s]}" -v base="${RPS[plain]}" -v cpu="${CPU[$s]}" -v cr="${CRATIO[$s]}" -v crange="${CRANGE[$s]}" \
			-v ucpu="${UCPU[$s]}" -v p50="${P50[$s]}" -v p99="${P99[$s]}" -v bad="${BAD[$s]}" -v rr="${RATIO[$s]}" \
			'BEGIN { split(crange, g, "-"); printf "| %s | %.0f | %.3f | %.3f | %.1f | %.3f (%.3f-%.3f) | %.1f | %.0f | %.0f | %d |\n", s, rps, rps / base, rr, cpu, 1 / cr, 1 / g[2], 1 / g[1], ucpu, p50, p99, bad }'
	done
	echo
	awk -v a="${RPS[wechat_auth]}" -v f="${RPS[forward_auth]}" -v d="${RPS[decrypt]}" -v p="${RPS[plain]}" \
		-v ca="${CPU[wechat_auth]}" -v cf="${CPU[forward_auth]}" -v r="${RPS[wechat_redis]}" -v rr="${RATIO[wechat_redis]}" 'BEGIN {
		printf "wechat_auth / plain = %.3f (target >= 0.97)\n", a / p
		printf "wechat_auth with the Redis store / plain = %.3f, per-round median %.3f (target >= 0.95)\n", r / p, rr
		printf "wechat_auth / forward_auth = %.2fx throughput, %.2fx Caddy CPU per request (target >= 2x)\n", a / f, cf / ca
		printf "decrypt / plain = %.3f (target >= 0.8)\n", d / p }'
	for s in wechat_auth wechat_redis redis_nocache; do
		awk -v s="$s" -v n="$ROUNDS" -v cr="${CRATIO[$s]}" -v crange="${CRANGE[$s]}" 'BEGIN { split(crange, g, "-")
			printf "%s: plain'"'"'s Caddy CPU per request / its own = %.3f, median of %d pairs, %.3f in the worst pair (target >= 0.98)\n", s, 1 / cr, n, 1 / g[2] }'
	done
	echo
	echo "Medians of $ROUNDS rounds of ${DURATION}s runs, each site beside a run of plain (its pair), wrk -t1 -c$CONNECTIONS; load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after."
	echo "Caddy pinned to CPU 0 with GOMAXPROCS=1; wrk, the upstream and Redis on CPU 1."
	echo "Machine: $NCPU x $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr), $(go version | awk '{ print $3 }')."
} | tee "$OUT/results.md"

for s in "${SITES[@]}"; do
	if [ "${BAD[$s]}" -ne 0 ]; then
		echo "error: $s had ${BAD[$s]} failed requests (non-2xx or socket errors): the figures are not valid" >&2
		exit 1
	fi
done
