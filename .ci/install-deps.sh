#!/usr/bin/env bash
# Installs the system packages the test suite needs, when missing, then the
# mini-program client kit's pinned TypeScript compiler (its type check).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli makes the test clusters (redis-cli --cluster create).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing ${need[*]}: install them (apt-get install -y ${need[*]})" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# examples/miniprogram/package-lock.json pins TypeScript (a devDependency, no
# install scripts); `npm ci` puts exactly that in its node_modules, again on
# every run, from npm's cache after the first.
kit="$(cd "$(dirname "$0")/.." && pwd)/examples/miniprogram"
npm ci --prefix "$kit" --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
