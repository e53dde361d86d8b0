#!/usr/bin/env bash
# Installs what mailkeep needs on Debian 12, then builds it into build/.
#
#   scripts/setup.sh [--runtime] [--no-build]
#
# --runtime: only what building and running the hub needs (scripts/hub.sh),
# Node.js and npm included: they build the web app (scripts/build-web.sh into
# build/web, which serve serves); without it also the test and benchmark tools
# (clang, Dovecot, isync, the SMTP server, chromium for the browser tests, the
# JMAP client and playwright-core packages), which have no place on a
# production machine. --no-build: install only (the web app's npm packages
# too). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=yes
TESTS=yes
for arg in "$@"; do
	case $arg in
	--no-build) BUILD=no ;;
	--runtime) TESTS=no ;;
	*)
		echo "usage: scripts/setup.sh [--runtime] [--no-build]" >&2
		exit 2
		;;
	esac
done

# Building and running the hub.
PACKAGES=(
	build-essential cmake pkg-config openssl
	libssl-dev libsqlite3-dev libsodium-dev libevent-dev zlib1g-dev
	libgmime-3.0-dev libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev
)
# Testing and benchmarking it.
[ $TESTS = no ] || PACKAGES+=(
	clang libclang-rt-14-dev clang-format
	python3 python3-aiosmtpd dovecot-imapd isync time
	systemd man-db # systemd-analyze verify and man -l check the installed unit and man page
	# The browser tests (tests/test-web.sh) drive Debian's chromium; the fonts
	# make its screenshots (docs/screenshots) show non-Latin text and emoji.
	chromium fonts-dejavu-core fonts-droid-fallback fonts-noto-color-emoji
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$SUDO apt-get update -q
	# Dovecot's package scripts try to start the system service; the tests
	# start their own instances, so keep the system one from starting.
	DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -q --no-install-recommends \
		"${missing[@]}"
fi

# Node.js and npm build the web app (and run the JMAP and browser tests).
# Only when node is missing: a nodejs from elsewhere brings its own npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
fi
# The web app's packages, pinned by web/package-lock.json (scripts/build-web.sh
# does this too when they are missing or older than the lockfile).
if [ -f web/package-lock.json ] && { [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; }; then
	(cd web && npm ci --no-audit --no-fund --loglevel=error)
	touch web/node_modules
fi

if [ $TESTS = yes ]; then
	# The real JMAP client tests (jmap-jam, eventsource from npm).
	if [ ! -d tests/jmap/node_modules/jmap-jam ]; then
		(cd tests/jmap && npm install --no-audit --no-fund --loglevel=error)
	fi
	# The OAuth tests' authorization server (oidc-provider, pinned in
	# tests/oauth/package-lock.json).
	if [ ! -d tests/oauth/node_modules/oidc-provider ]; then
		(cd tests/oauth && npm ci --no-audit --no-fund --loglevel=error)
	fi
	# The browser tests (playwright-core, axe-core; tests/web/package-lock.json).
	if [ ! -d tests/web/node_modules/playwright-core ] || [ tests/web/package-lock.json -nt tests/web/node_modules ]; then
		(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
		touch tests/web/node_modules
	fi
fi

[ $BUILD = yes ] || exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# The hub alone needs only its binary; the tests and benchmarks need the rest.
if [ $TESTS = yes ]; then
	cmake --build build -j"$(nproc)"
else
	cmake --build build -j"$(nproc)" --target mailkeep
fi
# The web app, into build/web (serve finds it beside the binary; cmake
# --install installs it).
if [ -f scripts/build-web.sh ]; then
	scripts/build-web.sh build/web
fi
