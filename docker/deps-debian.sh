#!/usr/bin/env bash
# Installs every Debian and npm dependency Atelier needs to build, run and test.
# One script for local set-up (make), CI (.ci/run) and the Dockerfiles, so they cannot drift.
# Idempotent: packages already present are not reinstalled, and apt-get update runs only
# when something is missing.
#
# Usage: docker/deps-debian.sh [--runtime-only] [--no-browser] [--no-npm] [--no-torch]
#   --runtime-only  only the shared libraries `atelier serve` needs (for slim images)
#   --no-browser    skip Chromium and the browser tests' npm packages
#   --no-npm        skip `npm ci` in web-client/ and tests/e2e/
#   --no-torch      skip Debian's libtorch (images that bring their own CUDA libtorch)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

runtime_only=0
browser=1
npm_install=1
torch=1
for arg in "$@"; do
  case "$arg" in
    --runtime-only) runtime_only=1; browser=0; npm_install=0 ;;
    --no-browser) browser=0 ;;
    --no-npm) npm_install=0 ;;
    --no-torch) torch=0 ;;
    *) echo "deps-debian.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

runtime_pkgs=(
  ca-certificates
  curl
  libsqlite3-0
  libspdlog1.10
  libfmt9
  libsodium23
  libpng16-16
  libjpeg62-turbo
  libwebp7
  libicu72
  # the common-password check (NIST SP 800-63B): libcrack2 and its packed dictionary
  libcrack2
  cracklib-runtime
)

build_pkgs=(
  build-essential
  cmake
  ninja-build
  ccache
  pkg-config
  git
  libboost1.81-dev
  nlohmann-json3-dev
  libsqlite3-dev
  sqlite3
  libtomlplusplus-dev
  libicu-dev
  libcli11-dev
  libspdlog-dev
  libfmt-dev
  libsodium-dev
  libcrack2-dev
  libpng-dev
  zlib1g-dev
  libjpeg-dev
  libwebp-dev
  libyaml-cpp-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  clang-format
  # the Clang thread-safety check (.ci/run)
  clang
  wrk
  # the reference server of tests/bench/ws_fanout (on demand)
  python3-aiohttp
  nodejs
)

torch_runtime_pkgs=(
  libtorch1.13
  # Debian's default reference BLAS makes matrix products ~16x slower than OpenBLAS.
  libopenblas0-pthread
)
torch_build_pkgs=(libtorch-dev libopenblas0-pthread)

pkgs=("${runtime_pkgs[@]}")
if [[ $torch -eq 1 ]]; then pkgs+=("${torch_runtime_pkgs[@]}"); fi
if [[ $runtime_only -eq 0 ]]; then
  pkgs+=("${build_pkgs[@]}")
  if [[ $torch -eq 1 ]]; then pkgs+=("${torch_build_pkgs[@]}"); fi
fi
if [[ $browser -eq 1 ]]; then
  pkgs+=(chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm ships inside NodeSource's nodejs package; Debian's own nodejs needs the separate npm package.
if [[ $runtime_only -eq 0 ]] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "deps-debian.sh: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps-debian.sh: all Debian packages present"
fi

# npm packages: reinstalled only when a lock file changed since the last install.
npm_dirs=(web-client)
if [[ $browser -eq 1 ]]; then npm_dirs+=(tests/e2e); fi
if [[ $npm_install -eq 1 ]]; then
  for dir in "${npm_dirs[@]}"; do
    lock="$root/$dir/package-lock.json"
    [[ -f "$lock" ]] || continue
    stamp="$root/$dir/node_modules/.atelier-lock-stamp"
    if [[ ! -f "$stamp" ]] || ! cmp -s "$lock" "$stamp"; then
      echo "deps-debian.sh: npm ci in $dir/"
      (cd "$root/$dir" && npm ci --no-audit --no-fund)
      cp "$lock" "$stamp"
    else
      echo "deps-debian.sh: $dir/node_modules up to date"
    fi
  done
fi
