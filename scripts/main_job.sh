#!/usr/bin/env bash
# The main job: sets up what is missing (including Debian's dataset-fashion-mnist), builds Keel's
# Fashion-MNIST example and trains it (examples/fashion_mnist.cpp; about 5 minutes on 2 cores).
# Usage: scripts/main_job.sh [--epochs N] [--batch-size N] [--lr X] [--seed N] [--out DIR] ...
#        (flags go to the trainer: scripts/main_job.sh --help lists them)
#        BUILD_DIR=build KEEL_CMAKE_ARGS="-DKEEL_CUDA=OFF" scripts/main_job.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
# shellcheck disable=SC2086  # KEEL_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${KEEL_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$(nproc)" --target fashion_mnist
cd "$root"
exec "$build/examples/fashion_mnist" "$@"
