#!/usr/bin/env bash
# Sets up what is missing, builds everything (CUDA code too when nvcc is present) and runs every test.
# Usage: scripts/test.sh [extra cmake args]    BUILD_DIR=build scripts/test.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" --parallel "$(nproc)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)"
