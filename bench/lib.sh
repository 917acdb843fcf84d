# What the bench scripts share; sourced, not run.

# require_free_ports exits when any of the given ports on 127.0.0.1 is
# taken: a run beside another would measure both.
require_free_ports() {
	local port
	for port in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "port $port is already in use: stop what listens there first" >&2
			exit 1
		fi
	done
}

# Every process started into PIDS is stopped when the script ends,
# however it ends.
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# ticks is the CPU time (utime + stime, in clock ticks of CLK_TCK a
# second) a process has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
