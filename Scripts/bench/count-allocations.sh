#!/usr/bin/env bash
# Heap allocations per training update (forward, loss, backward, clip, SGD): runs one `rnn bench` row for 1 s and for
# 4 s under an LD_PRELOAD counter and divides the difference in allocations by the difference in updates.
# Usage: Scripts/bench/count-allocations.sh ["lstm H512"]   (Linux, glibc; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/../.."
row="${1:-lstm H512}"
swift build -c release --product rnn >/dev/null
shim="$(mktemp -d)/count_allocations.so"
gcc -O2 -shared -fPIC Scripts/bench/count_allocations.c -o "$shim"
measure() {  # prints "allocations updates"
    out="$(LD_PRELOAD="$shim" .build/release/rnn bench --rows train --filter "$row" --seconds "$1" 2>&1)"
    allocs="$(grep -o 'ALLOCS [0-9]*' <<<"$out" | cut -d' ' -f2)"
    line="$(grep '^train' <<<"$out")"
    tps="$(awk '{for (i = 1; i <= NF; i++) if ($i == "tokens/s") print $(i - 1)}' <<<"$line")"
    tokens="$(grep -o 'B[0-9]* T[0-9]*' <<<"$line" | head -1 | tr -d 'BT' | awk '{print $1 * $2}')"
    echo "$allocs $(awk -v t="$tps" -v s="$1" -v k="$tokens" 'BEGIN {printf "%d", t * s / k}')"
}
read -r a1 u1 < <(measure 1)
read -r a2 u2 < <(measure 4)
echo "row '$row': $((a2 - a1)) allocations over about $((u2 - u1)) more updates"
awk -v a=$((a2 - a1)) -v u=$((u2 - u1)) 'BEGIN {printf "allocations per update: %.2f\n", (u > 0 ? a / u : 0)}'
