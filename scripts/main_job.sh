#!/usr/bin/env bash
# Sets up what is missing, builds Keel and runs the main job: for now the quick-start example
# (the Fashion-MNIST training demo replaces it when it lands).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" --parallel "$(nproc)" --target quickstart
"$build/examples/quickstart"
