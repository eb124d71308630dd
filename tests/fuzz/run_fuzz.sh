#!/usr/bin/env bash
# Runs each libFuzzer binary of a `fuzz` build for a while, one after the other (`make fuzz`).
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS_PER_TARGET [TARGET...]
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>) copied into a scratch
# corpus under BUILD_DIR/fuzz-corpus, so that what the fuzzer adds does not land in the tree, and
# uses tests/fuzz/<target>.dict when there is one. A crash leaves its input in
# BUILD_DIR/fuzz-artifacts/ and fails the run; add it to the committed corpus once fixed.
set -euo pipefail
build=${1:?build dir}
seconds=${2:?seconds per target}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json_body ws_message png_text safetensors upload_decode multipart)
src=$(cd "$(dirname "$0")" && pwd)
status=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/${t}_fuzz"
  corpus="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp -n "$src/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  dict=()
  [ -f "$src/$t.dict" ] && dict=(-dict="$src/$t.dict")
  echo "== $t: ${seconds}s"
  rc=0
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
    "${dict[@]}" "$corpus" >"$build/fuzz-$t.log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^Done |^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|ERROR|SUMMARY' \
    "$build/fuzz-$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "$t: FAILED (exit $rc; see $build/fuzz-$t.log and $artifacts/)"
    status=1
  fi
done
exit $status
