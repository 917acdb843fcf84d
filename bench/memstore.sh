#!/usr/bin/env bash
# The memory store with a million persisted sessions, in a real Caddy:
#
#   bash bench/memstore.sh [--sessions N] [--idle 60s] [--logins 300] [--restarts 3] [--dir DIR]
#
# Builds Caddy with the plugin (cmd/caddy) into bench/out/, writes a
# persist file of N sessions (each of its own user), then reports
#   - restart: from exec to the first 200 of an authenticated request
#     (median of --restarts runs),
#   - idle CPU: Caddy's utime+stime (/proc/<pid>/stat) over --idle, with
#     those sessions and no traffic, in CPU seconds per minute,
#   - login latency through the gateway (a wechat_mock site of the same
#     Caddy plays WeChat), with and without the persist file.
# Free loopback ports; files in a temporary directory (or --dir, which
# keeps them and reuses the persist file on the next run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
go build -o bench/out/caddy ./cmd/caddy
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--sessions | --idle | --logins | --restarts | --dir) args+=("-${1#--}" "$2"); shift 2 ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
	esac
done
exec go run ./bench/memstore -caddy bench/out/caddy "${args[@]}"
