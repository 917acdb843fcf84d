#!/usr/bin/env bash
# Installs the system packages the test suite needs, when missing, then the
# mini-program client kit's pinned TypeScript compiler (its type check).
# Go itself must be on the machine. Debian or Ubuntu; run as root, or as a
# user with sudo (asked for the apt-get step only).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server) # the Redis store tests
# redis-cli makes the test clusters (redis-cli --cluster create).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v node >/dev/null 2>&1 || need+=(nodejs) # the client kit's tests
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v curl >/dev/null 2>&1 || need+=(curl) # the README walkthrough (e2e)
# The Grafana dashboard's check asks a real Prometheus every panel's query.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# -race needs cgo, so the C compiler go uses (gcc unless CC says otherwise).
cc="$(go env CC 2>/dev/null || true)"
command -v "${cc:-gcc}" >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "missing ${need[*]}: install them as root (apt-get install -y ${need[*]})" >&2
			exit 1
		fi
		sudo=(sudo)
	fi
	echo "installing ${need[*]}" >&2
	${sudo[@]+"${sudo[@]}"} apt-get update -qq
	${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# examples/miniprogram/package-lock.json pins TypeScript (a devDependency, no
# install scripts); `npm ci` puts exactly that in its node_modules, again on
# every run, from npm's cache after the first. Under sudo it runs as the
# user who called sudo, so that node_modules in their checkout is theirs.
kit="$(cd "$(dirname "$0")/.." && pwd)/examples/miniprogram"
as_user=()
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
	as_user=(sudo -u "$SUDO_USER" -H)
fi
${as_user[@]+"${as_user[@]}"} npm ci --prefix "$kit" --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
