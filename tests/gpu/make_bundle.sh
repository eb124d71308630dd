#!/usr/bin/env bash
# Packs into .gpu/ (git-ignored) what tests/gpu/run.sh needs on a GPU machine that has libtorch
# but not Debian's packages: ICU's, zlib's and nlohmann-json's headers and ICU's and zlib's
# libraries (deps.tar.xz),
# and the sd-tiny and CLIP-vocabulary fixtures from ../shared (which does not travel to it).
# Run on a machine set up by docker/deps-debian.sh; then carry .gpu to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu && mkdir -p .gpu/stage/include .gpu/stage/lib .gpu/shared/fixtures/clip-tokenizer
cp -r /usr/include/unicode /usr/include/nlohmann /usr/include/zlib.h \
  /usr/include/x86_64-linux-gnu/zconf.h .gpu/stage/include/ 2>/dev/null ||
  cp -r /usr/include/unicode /usr/include/nlohmann /usr/include/zlib.h /usr/include/zconf.h \
    .gpu/stage/include/
for lib in libicuuc libicudata; do
  cp -L /usr/lib/x86_64-linux-gnu/$lib.so.72 .gpu/stage/lib/
done
cp -L /usr/lib/x86_64-linux-gnu/libz.so.1 .gpu/stage/lib/
tar -cJf .gpu/deps.tar.xz -C .gpu/stage include lib
rm -rf .gpu/stage
cp -r ../shared/fixtures/sd-tiny .gpu/shared/fixtures/
cp ../shared/fixtures/clip-tokenizer/{vocab.json,merges.txt} .gpu/shared/fixtures/clip-tokenizer/
du -sh .gpu
