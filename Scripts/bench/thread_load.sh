#!/usr/bin/env bash
# Holding up under load (#29): the d2l-rnn preset at 1 and at 2 threads while busy loops compete for the CPUs.
# Starts BUSY busy-loop processes (default 2, bounded by `timeout`, killed on exit), then trains `rnn train --preset
# d2l-rnn --epochs EPOCHS` alternately at 1 and 2 threads RUNS times each and prints the medians of wall, user and
# system time, the 2-thread/1-thread wall ratio and system time as a share of user time. It prints; it does not fail
# (goals from the issue: wall ratio <= 1.10, system time < 5% of user time).
# Usage: Scripts/bench/thread_load.sh [RNN] [EPOCHS] [RUNS] [BUSY]
#        (defaults: .build/release/rnn, 20 epochs, 3 runs, 2 busy loops; build with swift build -c release --product rnn)
set -euo pipefail
cd "$(dirname "$0")/../.."
rnn="${1:-.build/release/rnn}"
epochs="${2:-20}"
runs="${3:-3}"
busy="${4:-2}"
[ -x "$rnn" ] || { echo "thread_load: no $rnn: swift build -c release --product rnn" >&2; exit 1; }

work="$(mktemp -d)"
busy_pids=()
cleanup() {
    for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One training run; prints "wall user sys" in seconds (bash's `time` counts the child's CPU time).
run() {
    local threads="$1" out="$work/run-$1-$RANDOM" timing
    TIMEFORMAT='%R %U %S'
    if ! timing="$( { time "$rnn" train --preset d2l-rnn --epochs "$epochs" --threads "$threads" --output "$out" \
                          >"$work/log" 2>&1; } 2>&1 )"; then
        echo "thread_load: rnn train failed at $threads thread(s):" >&2; tail -n 3 "$work/log" >&2; exit 1
    fi
    rm -rf "$out"
    echo "$timing"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for _ in $(seq "$busy"); do
    timeout 1800 sh -c 'while :; do :; done' &
    busy_pids+=("$!")
done
sleep 0.5

declare -A wall user sys
for _ in $(seq "$runs"); do
    for threads in 1 2; do
        read -r w u s < <(run "$threads")
        wall[$threads]+="$w "; user[$threads]+="$u "; sys[$threads]+="$s "
    done
done

cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')"
model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
echo "d2l-rnn preset, $epochs epochs, $busy busy loop(s) on $cpus CPU(s)${model:+ ($model)}; median of $runs alternated runs"
echo "$rnn"
printf '%-8s %9s %9s %9s %9s\n' threads "wall s" "user s" "sys s" "sys/user"
declare -A mw mu ms
for threads in 1 2; do
    mw[$threads]="$(tr ' ' '\n' <<<"${wall[$threads]}" | grep . | median)"
    mu[$threads]="$(tr ' ' '\n' <<<"${user[$threads]}" | grep . | median)"
    ms[$threads]="$(tr ' ' '\n' <<<"${sys[$threads]}" | grep . | median)"
    printf '%-8s %9.2f %9.2f %9.2f %8.1f%%\n' "$threads" "${mw[$threads]}" "${mu[$threads]}" "${ms[$threads]}" \
        "$(awk -v s="${ms[$threads]}" -v u="${mu[$threads]}" 'BEGIN { r = (u > 0) ? 100 * s / u : 0; print r }')"
done
awk -v a="${mw[1]}" -v b="${mw[2]}" -v s="${ms[2]}" -v u="${mu[2]}" 'BEGIN {
    r = (u > 0) ? 100 * s / u : 0
    printf "2 threads / 1 thread, wall: %.2f (goal <= 1.10); system / user at 2 threads: %.1f%% (goal < 5%%)\n", b / a, r }'
