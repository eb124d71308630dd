#!/usr/bin/env bash
# The GPU check, run on a machine with an NVIDIA GPU and a CUDA build of PyTorch (the device
# machine of a session, or a production host). Builds the CPPN and Stable Diffusion code against
# that libtorch with nothing but g++ (the GPU machine lacks the server's other dependencies),
# then runs the CUDA checks (tests/gpu/*_check.cpp) and the benchmarks on CUDA.
#
#   bash tests/gpu/run.sh [out_dir]
#
# What the GPU machine lacks comes in .gpu/ (made by tests/gpu/make_bundle.sh on a machine with
# the Debian packages): ICU and nlohmann-json headers and the ICU libraries, and the fixtures
# when ../shared is not beside the checkout. Without python's torch (a machine without a GPU)
# the same recipe builds against Debian's libtorch, and the checks report themselves skipped.
set -uo pipefail
OUT=${1:-${OUT:-/tmp/atelier-gpu}}
BUILD=/tmp/atelier-gpu-build
mkdir -p "$OUT" "$BUILD/obj"
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
g++ --version | head -1

if TORCH_DIR=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null); then
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  TORCH_INC=(-isystem "$TORCH_DIR/include" -isystem "$TORCH_DIR/include/torch/csrc/api/include")
  TORCH_LIB=$TORCH_DIR/lib
  # --no-as-needed keeps libtorch_cuda linked: its static initializers register the CUDA kernels.
  TORCH_LIBS=(-Wl,--no-as-needed -ltorch_cuda -ltorch -ltorch_cpu -lc10_cuda -lc10 -Wl,--as-needed)
else
  echo "python3 has no torch: building against Debian's libtorch (CPU only)"
  ABI=1
  TORCH_INC=(-isystem /usr/include/torch/csrc/api/include)
  TORCH_LIB=/usr/lib/x86_64-linux-gnu
  TORCH_LIBS=(-ltorch -ltorch_cpu -lc10)
fi

DEPS_INC=() ICU_LIBS=(-licuuc -lz)
if [ -f .gpu/deps.tar.xz ]; then
  rm -rf "$BUILD/deps" && mkdir -p "$BUILD/deps" && tar -xJf .gpu/deps.tar.xz -C "$BUILD/deps" || exit 1
  DEPS_INC=(-isystem "$BUILD/deps/include")
  # libicuuc finds libicudata through the path too (RUNPATH would not reach it).
  ICU_LIBS=("$BUILD/deps/lib/libicuuc.so.72" "$BUILD/deps/lib/libicudata.so.72"
    "$BUILD/deps/lib/libz.so.1")
  export LD_LIBRARY_PATH="$BUILD/deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ ! -e ../shared/fixtures/sd-tiny ] && [ -d .gpu/shared ]; then
  ln -sfn "$PWD/.gpu/shared" ../shared
fi

CXXFLAGS=(-std=c++20 -O2 -DNDEBUG -Wno-deprecated-declarations -D_GLIBCXX_USE_CXX11_ABI="$ABI" -I. "${DEPS_INC[@]}"
  "${TORCH_INC[@]}" -DATELIER_SOURCE_DATA_DIR="\"$PWD/assets\"")
# PyTorch's builds of libtorch export copies of some libstdc++ functions (libtorch.so 2.11
# defines std::filesystem::remove_all) built against another libstdc++; found first, they
# interpose on the system's and crash. Naming libstdc++ before everything else makes it win.
LINK_FIRST=(-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state)
LIBS=(-L"$TORCH_LIB" "${TORCH_LIBS[@]}" -Wl,-rpath,"$TORCH_LIB" "${ICU_LIBS[@]}" -pthread -ldl)
CORE=(common/status.cpp common/safetensors.cpp server/inference/generator.cpp
  server/inference/cppn_style.cpp server/inference/cppn_generator.cpp
  server/inference/sd/clip_tokenizer.cpp server/inference/sd/model_files.cpp
  server/inference/sd/schedule.cpp server/inference/sd/weights.cpp
  server/inference/sd/clip_text_encoder.cpp server/inference/sd/layers.cpp
  server/inference/sd/unet.cpp server/inference/sd/vae.cpp server/inference/sd/pipeline.cpp
  server/inference/sd/synthetic_model.cpp server/inference/sd/checkpoint_keys.cpp
  server/inference/sd/single_file.cpp server/inference/sd/single_file_layout.cpp
  server/inference/sd/single_file_pipeline.cpp server/inference/sd/lora.cpp)
MAINS=(tests/gpu/cppn_cuda_check.cpp tests/bench/cppn_bench.cpp tests/gpu/sd_cuda_check.cpp
  tests/bench/sd_bench.cpp)

obj() { echo "$BUILD/obj/$(echo "$1" | tr / _).o"; }
start=$(date +%s)
status=0
# One object per source, as many at once as there are cores: torch headers are heavy.
# g++ writes an object only when it compiles, so a missing object is a failed compile.
for s in "${CORE[@]}" "${MAINS[@]}"; do
  rm -f "$(obj "$s")"
  g++ "${CXXFLAGS[@]}" -c "$s" -o "$(obj "$s")" 2>"$(obj "$s").log" &
  [ "$(jobs -r | wc -l)" -ge "$(nproc)" ] && wait -n
done
wait
for s in "${CORE[@]}" "${MAINS[@]}"; do
  if [ ! -f "$(obj "$s")" ]; then
    echo "compile FAILED: $s"; head -c 4000 "$(obj "$s").log"; status=1
  fi
  cat "$(obj "$s").log" >>"$OUT/build.log"
done
core_objs=()
for s in "${CORE[@]}"; do
  [ -f "$(obj "$s")" ] || exit 1
  core_objs+=("$(obj "$s")")
done
# A check whose own file fails to compile is reported; the others still run.
for m in "${MAINS[@]}"; do
  [ -f "$(obj "$m")" ] || continue
  g++ "${LINK_FIRST[@]}" "${core_objs[@]}" "$(obj "$m")" "${LIBS[@]}" -o "$BUILD/$(basename "$m" .cpp)" \
    2>>"$OUT/build.log" || { echo "link FAILED: $m"; tail -20 "$OUT/build.log"; status=1; }
done
echo "built in $(($(date +%s) - start)) s"

run() {
  echo "== $*"
  [ -x "$1" ] || { echo "not built"; status=1; return; }
  "$@"
  local rc=$?
  # 77: skipped (no CUDA device); anything else non-zero fails the check.
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then status=1; fi
}
run "$BUILD/sd_cuda_check"
run "$BUILD/cppn_cuda_check"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  run "$BUILD/cppn_bench" cuda 7
  run "$BUILD/sd_bench" --gpu-only
fi
exit $status
