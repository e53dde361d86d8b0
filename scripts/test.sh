#!/usr/bin/env bash
# Sets up, checks the style (banned functions, clang-format; see
# scripts/check-style.sh), builds and runs every test twice: a release build,
# then an ASan+UBSan build (clang) that also runs the libFuzzer targets for a
# bounded time. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build

echo "== style"
scripts/check-style.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

echo "== tests (release build)"
(cd build && ctest --output-on-failure -j2)

echo "== tests and fuzzers (clang, ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	-DMK_SANITIZE=ON -DMK_FUZZ=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2)
