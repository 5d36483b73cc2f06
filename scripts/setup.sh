#!/usr/bin/env bash
# Installs what Keel needs and is missing, and nothing else. Safe to run again.
#   Debian packages: toolchain, libraries, python3-torch for the parity tests, and clang with its
#   runtime libraries (libFuzzer, sanitizers) for scripts/fuzz.sh.
#   A virtual environment (.venv, made from Debian's python3 with system site packages so that
#   it sees python3-torch and python3-numpy) for the PyPI-only test tools.
# Usage: scripts/setup.sh            (everything)
#        KEEL_SETUP_SKIP_PIP=1 scripts/setup.sh   (Debian packages only)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debian_packages=(
  cmake ninja-build ccache g++ pkg-config
  clang libclang-rt-14-dev
  libfmt-dev catch2 zlib1g-dev libdnnl-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin
  python3 python3-venv python3-numpy python3-torch
  dataset-fashion-mnist
)

missing=()
for package in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[setup] Debian packages: all present"
fi

# PyPI-only tools, pinned to versions that work with Debian 12's numpy 1.24 and protobuf.
pypi_packages=(onnx==1.16.2 onnxruntime==1.19.2 safetensors==0.4.5 tensorboard==2.17.1)
if [ -z "${KEEL_SETUP_SKIP_PIP:-}" ]; then
  venv="$root/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
  fi
  if ! "$venv/bin/python" -c 'import onnx, onnxruntime, safetensors, tensorboard' 2>/dev/null; then
    echo "[setup] installing PyPI packages: ${pypi_packages[*]}"
    "$venv/bin/python" -m pip install -q "${pypi_packages[@]}"
  else
    echo "[setup] PyPI packages: all present"
  fi
fi
