#!/usr/bin/env bash
# Installs what rlhf needs on Debian 12 (as root) and builds it.
#   bash scripts/setup.sh                      # Debian's libtorch-dev 1.13 (CPU)  -> build/rlhf   (the default)
#   RLHF_TORCH=pypi bash scripts/setup.sh      # PyPI's torch 2.x wheel (CUDA compiled in) -> build-torch2/rlhf
#   RLHF_SKIP_INSTALL=1 bash scripts/setup.sh  # build only
#   RLHF_BUILD_DIR=dir                         # another build folder
# The PyPI build takes libtorch from the wheel in .venv (scripts/venv.sh, pinned in scripts/requirements.txt): the
# binary links the wheel's libraries but never runs Python. Why Debian's is the default: README, "Two libtorch builds".
set -euo pipefail
cd "$(dirname "$0")/.."
torch_kind="${RLHF_TORCH:-debian}"
case "$torch_kind" in
  debian) build="${RLHF_BUILD_DIR:-build}" ;;
  pypi) build="${RLHF_BUILD_DIR:-build-torch2}" ;;
  *) echo "setup.sh: RLHF_TORCH must be debian or pypi, not \"$torch_kind\"" >&2; exit 1 ;;
esac

if [[ -z "${RLHF_SKIP_INSTALL:-}" ]]; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  pkgs=(g++ cmake ninja-build pkg-config
        libcli11-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev
        libsqlite3-dev libcpp-httplib-dev libssl-dev libgtest-dev
        libgloo-dev)
  # libgloo-dev: the headers of Gloo, which libtorch's ProcessGroupGloo (data parallel on CPU) includes.
  # libtorch-dev: the PyTorch C++ API (1.13, CPU). libopenblas0-pthread: the fast BLAS behind it.
  # python3-venv: the PyPI build's virtual environment (and the tests').
  if [[ $torch_kind == debian ]]; then pkgs+=(libtorch-dev libopenblas0-pthread); else pkgs+=(python3-venv); fi
  $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  if [[ $torch_kind == debian ]]; then
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
fi

# The wheel is built with CUDA, and its CMake config refuses to configure without a CUDA toolkit (nvcc), even for
# a binary that then runs on the CPU.
has_cuda_toolkit() { command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; }
prefix=()
if [[ $torch_kind == pypi ]]; then
  has_cuda_toolkit || { echo "setup.sh: RLHF_TORCH=pypi needs the CUDA toolkit (nvcc; PyPI's torch $(grep -m1 '^torch==' scripts/requirements.txt | cut -d= -f3) is built with CUDA 13.0 and its TorchConfig.cmake will not configure without it) (hint: install NVIDIA's CUDA toolkit 13, or use the default Debian build)" >&2; exit 1; }
  py="$(bash scripts/venv.sh)"
  prefix=(-DCMAKE_PREFIX_PATH="$("$py" -W ignore -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)")
fi
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${prefix[@]}" ${RLHF_CMAKE_ARGS:-} >"$build/cmake.log" 2>&1 ||
  { cat "$build/cmake.log" >&2; exit 1; }
grep -m1 "^-- libtorch " "$build/cmake.log" || true
cmake --build "$build" -j "$(nproc)"
echo "built: $build/rlhf"
