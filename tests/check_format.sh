#!/usr/bin/env bash
# Checks that every C++ file under common/, server/ and tests/ is formatted as .clang-format
# says (clang-format --dry-run -Werror); changes nothing. `make format` applies the formatting.
# Exit status: non-zero when a file would change; the closing line says how many did.
#
# Usage: tests/check_format.sh [FILE...]   (default: every C++ file of those folders)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v clang-format >/dev/null || { echo "check_format: clang-format not found" >&2; exit 2; }

if [[ $# -gt 0 ]]; then
  files=("$@")
else
  # node_modules (the e2e tests') and build trees hold no code of ours.
  mapfile -t files < <(find common server tests \( -name node_modules -o -name build \) -prune \
    -o -type f \( -name '*.h' -o -name '*.cpp' \) -print | sort)
fi

# One clang-format run for all files; it names each file that would change in its errors.
out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1)
rc=$?
mapfile -t bad < <(sed -nE 's/^([^:]+):[0-9]+:[0-9]+: error: .*/\1/p' <<<"$out" | sort -u)
for f in "${bad[@]}"; do
  echo "not formatted: $f (clang-format -i $f)"
done
if [[ $rc -ne 0 && ${#bad[@]} -eq 0 ]]; then  # it failed for another reason: show why
  echo "$out" | tail -20
  bad=("clang-format exited $rc")
fi
echo "format: $((${#files[@]} - ${#bad[@]})) passed, ${#bad[@]} failed"
[[ ${#bad[@]} -eq 0 ]]
