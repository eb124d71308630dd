#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU and a CUDA build of PyTorch (the device
# machine of a session, or a production host): builds the CPPN model against that libtorch with
# nothing but g++ (the GPU machine lacks the server's other dependencies), then runs the CUDA
# checks (tests/gpu/cppn_cuda_check.cpp) and the CPPN benchmark on cuda and cpu.
#
#   bash tests/gpu/run.sh [out_dir]
set -uo pipefail
OUT=${1:-${OUT:-/tmp/atelier-gpu}}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
TORCH_DIR=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))') || exit 1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
g++ --version | head -1
CXXFLAGS=(-std=c++20 -O2 -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI="$ABI" -I. -isystem "$TORCH_DIR/include"
  -isystem "$TORCH_DIR/include/torch/csrc/api/include")
# --no-as-needed keeps libtorch_cuda linked: its static initializers register the CUDA kernels.
LIBS=(-L"$TORCH_DIR/lib" -Wl,--no-as-needed -ltorch_cuda -ltorch -ltorch_cpu -lc10_cuda -lc10
  -Wl,--as-needed -Wl,-rpath,"$TORCH_DIR/lib" -pthread -ldl)
SRCS=(common/status.cpp server/inference/generator.cpp server/inference/cppn_style.cpp
  server/inference/cppn_generator.cpp)
set -x
# One object per source, two at a time: torch headers are heavy.
mkdir -p "$OUT/obj"
objs=()
for s in "${SRCS[@]}" tests/gpu/cppn_cuda_check.cpp tests/bench/cppn_bench.cpp; do
  o="$OUT/obj/$(echo "$s" | tr / _).o"
  g++ "${CXXFLAGS[@]}" -c "$s" -o "$o" &
  objs+=("$o")
  [ "$(jobs -r | wc -l)" -ge 8 ] && wait -n
done
wait
core=("${objs[@]:0:4}")
g++ "${core[@]}" "${objs[4]}" "${LIBS[@]}" -o "$OUT/cppn_cuda_check" || exit 1
g++ "${core[@]}" "${objs[5]}" "${LIBS[@]}" -o "$OUT/cppn_bench" || exit 1
set +x
status=0
"$OUT/cppn_cuda_check" || status=$?
"$OUT/cppn_bench" cuda 7 || status=$?
"$OUT/cppn_bench" cpu 3 "$(nproc)" || status=$?
exit $status
