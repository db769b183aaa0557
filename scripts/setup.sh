#!/usr/bin/env bash
# Installs what rlhf needs on Debian 12 (as root) and builds it into build/.
#   bash scripts/setup.sh            # install + build
#   RLHF_SKIP_INSTALL=1 bash scripts/setup.sh   # build only
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${RLHF_SKIP_INSTALL:-}" ]]; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # libtorch-dev: the PyTorch C++ API (1.13, CPU). libopenblas0-pthread: the fast BLAS behind it.
  $SUDO apt-get install -y -qq --no-install-recommends \
    g++ cmake ninja-build pkg-config \
    libtorch-dev libopenblas0-pthread \
    libcli11-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev \
    libsqlite3-dev libcpp-httplib-dev libgtest-dev >/dev/null
  # Debian's libtorch calls the system BLAS: make sure it is OpenBLAS, not the ~40x slower reference BLAS.
  blas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
  if ! update-alternatives --display libblas.so.3-x86_64-linux-gnu | grep -q "currently points to $blas"; then
    $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas"
  fi
  lapack=/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3
  if [[ -e $lapack ]] && ! update-alternatives --display liblapack.so.3-x86_64-linux-gnu | grep -q "currently points to $lapack"; then
    $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lapack"
  fi
  update-alternatives --display libblas.so.3-x86_64-linux-gnu | grep "currently points to" | sed 's/^/BLAS: /'
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${RLHF_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)"
echo "built: build/rlhf"
