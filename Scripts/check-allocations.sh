#!/usr/bin/env bash
# Checked invariant: training updates and generated tokens allocate nothing on the heap.
# Each configuration runs `rnn probe` twice under an LD_PRELOAD counter (malloc, calloc, realloc, posix_memalign,
# aligned_alloc, memalign, valloc), with N and 2N units of work; the totals must be equal. Counting is deterministic, so
# any difference is a failure (exit 1). Linux/glibc; run after `swift build -c release --product rnn`.
# Usage: Scripts/check-allocations.sh [N]     (default N = 4)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-4}"
rnn=.build/release/rnn
[ -x "$rnn" ] || { echo "check-allocations: build first: swift build -c release --product rnn" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc="$(command -v cc || command -v gcc || command -v clang)"
"$cc" -O2 -shared -fPIC Scripts/bench/count_allocations.c -o "$work/count.so"

count() {  # prints the allocations of one probe run
    local out
    out="$(LD_PRELOAD="$work/count.so" "$rnn" probe "$@" 2>&1)" || { echo "probe failed: rnn probe $*: $out" >&2; return 1; }
    grep -o 'ALLOCS [0-9]*' <<<"$out" | tail -1 | cut -d' ' -f2
}
failures=0
check() {  # check UNIT ARGS...: N and 2N units must allocate the same
    local unit="$1"; shift
    local a b x note=""
    a="$(count "$@" --count "$n")"; b="$(count "$@" --count "$((2 * n))")"
    if [ "$a" -ne "$b" ]; then
        # A process can make one or two extra allocations once, depending on how its two threads interleave at
        # start-up (seen in generation at 2 threads: 3518 or 3520 allocations for the same run, whatever N: the
        # worker's first job). That is not per unit of work, and an allocation per unit shifts every run of 2N units
        # by N or more. So run each 11 times and pass when the two sets of counts share a value.
        local as=("$a") bs=("$b")
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            as+=("$(count "$@" --count "$n")")
            bs+=("$(count "$@" --count "$((2 * n))")")
        done
        a="$(printf '%s\n' "${as[@]}" | sort -n | uniq -c | sort -rn | head -n 1 | awk '{print $2}')"  # most frequent
        b="$(printf '%s\n' "${bs[@]}" | sort -n | uniq -c | sort -rn | head -n 1 | awk '{print $2}')"
        local shared
        shared="$(comm -12 <(printf '%s\n' "${as[@]}" | sort -u) <(printf '%s\n' "${bs[@]}" | sort -u) | head -n 1)"
        if [ -n "$shared" ]; then a="$shared"; b="$shared"; fi
        note=" (11 runs each: N gave $(printf '%s\n' "${as[@]}" | sort -n | uniq | tr '\n' ' ')and 2N $(printf '%s\n' "${bs[@]}" | sort -n | uniq | tr '\n' ' ' | sed 's/ $//'))"
    fi
    local diff=$((b - a))
    printf '%-90s %s per %s (%d, %d)%s\n' "$*" "$(awk -v d="$diff" -v n="$n" 'BEGIN {printf "%.2f", d / n}')" "$unit" "$a" "$b" "$note"
    [ "$diff" -eq 0 ] || failures=$((failures + 1))
}

# Training: forward, loss, backward, clip, optimizer. Sizes large enough for the two-half element-wise split
# (B * gates * H >= 16384) and a 48-step chunk so recompute (interval 16) has three segments.
for cell in rnn_tanh rnn_relu gru lstm; do
    for optimizer in sgd adam; do
        for threads in 1 2; do
            for recompute in 0 16; do
                check update --workload train --cell "$cell" --hidden 128 --layers 2 --batch 128 --steps 48 --embedding 32 \
                    --dropout 0.2 --optimizer "$optimizer" --threads "$threads" --recompute-interval "$recompute"
            done
        done
    done
done
check update --workload train --cell lstm --hidden 512 --layers 1 --batch 32 --steps 35 --vocabulary 28 --threads 2
# Mixed precision: the bf16 GEMM's packing buffers are per thread and grow once.
for threads in 1 2; do
    check update --workload train --cell gru --hidden 256 --layers 2 --batch 64 --steps 35 --embedding 64 --product-precision bfloat16 \
        --threads "$threads"
done
# Batch-1 generation per token: greedy, sampling (temperature 0.8, top-k 10) and nucleus sampling (top-p 0.9, which
# sorts the whole vocabulary in place every token), Float and bfloat16 weights.
for cell in rnn_tanh gru lstm; do
    for decoding in greedy sample nucleus; do
        for precision in float32 bfloat16 int8; do
            check token --workload generate --cell "$cell" --hidden 256 --layers 2 --embedding 64 --decoding "$decoding" \
                --weight-precision "$precision" --threads 2
        done
    done
done
# The LanguageModelTrainer's own loop (d2l presets, sequential minibatches): per update within the first epoch.
for cell in rnn_tanh lstm; do
    check update --workload trainer --cell "$cell" --hidden 512 --epochs 1 --threads 2
done
# A composed model through the Trainer (Sequential: recurrent stack with dropout, last step, dropout, linear head;
# WindowBatches, MeanSquaredErrorLoss, clipping, Adam): the layers, the loss and the batches reuse their storage.
for cell in rnn_tanh gru lstm; do
    for threads in 1 2; do
        check update --workload sequential --cell "$cell" --hidden 64 --layers 2 --batch 32 --steps 24 --dropout 0.2 \
            --optimizer adam --threads "$threads"
    done
done
# Per epoch (not an invariant: each epoch draws its row starts and makes a report); printed for the record.
a="$(count --workload trainer --cell rnn_tanh --hidden 64 --epochs 1 --count 1000000)"
b="$(count --workload trainer --cell rnn_tanh --hidden 64 --epochs 2 --count 1000000)"
echo "trainer d2l-rnn (whole corpus): $((b - a)) allocations per epoch (the epoch's row starts and its report)"

if [ "$failures" -gt 0 ]; then echo "check-allocations: $failures configuration(s) allocate per unit of work" >&2; exit 1; fi
echo "check-allocations: every configuration allocates 0 per update and per token"
