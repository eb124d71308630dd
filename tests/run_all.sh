#!/usr/bin/env bash
# Runs every test suite against an existing build and prints one closing line with the totals:
#   C++ unit + integration (ctest), web client unit (vitest), OpenAPI lint (redocly),
#   browser end-to-end (node --test + Chromium), and two checks: C++ formatting
#   (tests/check_format.sh) and the web client's ESLint.
# Every suite runs even when an earlier one failed, so one run shows all failures; the exit
# status is non-zero if any suite failed or ran no test.
#
# Usage: tests/run_all.sh [BUILD_DIR]   (default build/release)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-build/release}"
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
export NO_COLOR=1

total_passed=0
total_failed=0
failed_suites=()

# run_suite NAME PARSER COMMAND...: runs the command, tees its output, adds its counts.
run_suite() {
  local name="$1" parser="$2"
  shift 2
  echo
  echo "==== $name ===="
  local log="$logs/$name.log"
  ( cd "$root" && "$@" ) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local passed=0 failed=0
  # Counts are read from the output without colour codes (some runners colour even when piped).
  sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log" >"$log.plain"
  read -r passed failed < <("$parser" "$log.plain")
  if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi  # a crash or a failed step counts
  if [[ $rc -eq 0 && $passed -eq 0 ]]; then
    echo "$name: ran no test" >&2
    failed=$((failed + 1))
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  if [[ $failed -ne 0 ]]; then failed_suites+=("$name"); fi
  echo "---- $name: $passed passed, $failed failed"
}

# "100% tests passed, 0 tests failed out of 145". CTest counts a skipped test (GTEST_SKIP, e.g.
# no GPU) among the passed ones; they are listed under "did not run" and are taken out here, so a
# skip is never reported as a pass.
parse_ctest() {
  local line total failed skipped
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1)
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  skipped=$(grep -cE '^\s+[0-9]+ - .* \((Skipped|Disabled)\)$' "$1" || true)
  if [[ ${skipped:-0} -gt 0 ]]; then echo "ctest: ${skipped} skipped (not counted as passed)" >&2; fi
  echo "$(( ${total:-0} - ${failed:-0} - ${skipped:-0} )) ${failed:-0}"
}

# "      Tests  21 passed (21)" or "Tests  1 failed | 20 passed (21)"
parse_vitest() {
  local line passed failed
  line=$(grep -E '^\s*Tests\s' "$1" | tail -1)
  passed=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
  failed=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
  echo "${passed:-0} ${failed:-0}"
}

# node --test summary: "ℹ pass 4" / "ℹ fail 0"
parse_node_test() {
  local passed failed
  passed=$(grep -E '^. pass [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+$')
  failed=$(grep -E '^. fail [0-9]+' "$1" | tail -1 | grep -oE '[0-9]+$')
  echo "${passed:-0} ${failed:-0}"
}

# The format check is one check (its closing line counts files: "format: 306 passed, 2 failed").
parse_format() {
  if grep -qE '^format: [0-9]+ passed, 0 failed$' "$1"; then echo "1 0"; else echo "0 1"; fi
}

# ESLint is one check: clean, or "✖ 3 problems (3 errors, 0 warnings)" (a crash is caught by
# run_suite through the exit status).
parse_eslint() {
  if grep -qE '✖ [0-9]+ problems?' "$1"; then echo "0 1"; else echo "1 0"; fi
}

# The linter is one check: it passed or it did not.
parse_lint() {
  if grep -qE 'Woohoo! Your API description is valid|validated in' "$1" && ! grep -qE '[1-9][0-9]* errors?\b' "$1"; then
    echo "1 0"
  else
    echo "0 1"
  fi
}

run_suite cpp parse_ctest ctest --test-dir "$build_dir" -j "$(nproc)" --output-on-failure
run_suite web-unit parse_vitest npm --prefix web-client test
run_suite openapi-lint parse_lint npm --prefix web-client run lint:api
run_suite format parse_format bash tests/check_format.sh
run_suite web-lint parse_eslint npm --prefix web-client run lint
run_suite browser-e2e parse_node_test env ATELIER_BIN="$build_dir/server/app/atelier" \
  npm --prefix tests/e2e test

echo
if [[ ${#failed_suites[@]} -gt 0 ]]; then
  echo "FAILED suites: ${failed_suites[*]}"
fi
echo "all suites: $total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
