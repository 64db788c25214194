#!/usr/bin/env bash
# Checked invariant (issue #30): the memory `rnn train` estimates before it allocates anything
# (`TrainingOptions.estimatedMemoryBytes`, printed as "memory: estimated N MiB") is within 20% of the peak resident
# memory the run reaches, at sizes whose peak is 256 MiB or more: one-hot and embedded input, the three cells, SGD,
# momentum, Adam and RMSprop, several layers with dropout, a projection with recomputation, bf16 products, a word
# vocabulary, validation. Each run trains one short epoch on one thread (10-25 s on a 2-core x86-64 machine) and
# saves its checkpoint, as every `rnn train` does.
#
# Prints a markdown table (size, estimated MiB, peak MiB, ratio = estimated / peak) and exits 1 when a ratio is
# outside [0.8, 1.2]. The peak is `/usr/bin/time -f %M` when it exists, else the largest VmHWM read from
# /proc/<pid>/status while the run lasts and the run's own "peak memory" line. Builds nothing.
# Usage: Scripts/memory/estimate-vs-peak.sh [path/to/rnn]     (default .build/release/rnn, from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
rnn="${1:-.build/release/rnn}"
[ -x "$rnn" ] || { echo "estimate-vs-peak: no executable $rnn; build first: swift build -c release --product rnn" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

have_time=0
[ -x /usr/bin/time ] && have_time=1

# peak_kib LOG ARGS...: runs `rnn train ARGS`, its output in LOG, and prints its peak resident memory in KiB.
peak_kib() {
    local log="$1"; shift
    if [ "$have_time" = 1 ]; then
        /usr/bin/time -f %M -o "$work/time" "$rnn" train "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
        tail -n 1 "$work/time"
        return
    fi
    "$rnn" train "$@" >"$log" 2>&1 &
    local pid=$! hwm=0 now
    while kill -0 "$pid" 2>/dev/null; do
        now="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        [ -n "$now" ] && [ "$now" -gt "$hwm" ] && hwm="$now"
        sleep 0.05
    done
    wait "$pid" || { cat "$log" >&2; return 1; }
    # The run's own ru_maxrss at its end ("peak memory N MB", MiB) covers a peak after the last reading.
    now="$(sed -n 's/.*peak memory \([0-9]*\) MB.*/\1/p' "$log" | tail -n 1)"
    [ -n "$now" ] && [ $((now * 1024)) -gt "$hwm" ] && hwm=$((now * 1024))
    echo "$hwm"
}

failures=0
# measure LABEL OPTIONS...: one table row for `rnn train OPTIONS --epochs 1 --threads 1 --sample-every 0 --output <temporary>`.
measure() {
    local label="$1"; shift
    local log="$work/train.log" kib estimate line
    kib="$(peak_kib "$log" "$@" --epochs 1 --threads 1 --sample-every 0 --output "$work/run")"
    estimate="$(sed -n 's/^memory: estimated \([0-9]*\) MiB.*/\1/p' "$log" | head -n 1)"
    [ -n "$estimate" ] || { echo "estimate-vs-peak: $label: rnn train printed no 'memory: estimated' line" >&2; cat "$log" >&2; exit 1; }
    line="$(awk -v e="$estimate" -v k="$kib" -v label="$label" 'BEGIN {
        peak = k / 1024; ratio = e / peak
        printf "| %s | %d | %d | %.2f |%s", label, e, peak, ratio, (ratio < 0.8 || ratio > 1.2) ? " outside [0.8, 1.2]" : ""
    }')"
    echo "$line"
    case "$line" in *outside*) failures=$((failures + 1)) ;; esac
    rm -rf "$work/run"
}

echo "| size | estimated MiB | peak MiB | ratio |"
echo "|---|---:|---:|---:|"
measure "rnn_tanh H4096 one-hot B32 T35 sgd" \
    --corpus timemachine --max-tokens 5000 --cell rnn_tanh --hidden 4096 --batch 32 --steps 35 --optimizer sgd
measure "rnn_tanh H8000 one-hot B8 T16 sgd" \
    --corpus timemachine --max-tokens 600 --cell rnn_tanh --hidden 8000 --batch 8 --steps 16 --optimizer sgd
measure "lstm H2048 E256 B32 T35 adam" \
    --corpus timemachine --max-tokens 5000 --cell lstm --hidden 2048 --embedding 256 --batch 32 --steps 35 --optimizer adam --lr 0.002
measure "gru H3072 one-hot B16 T32 sgd momentum" \
    --corpus timemachine --max-tokens 2000 --cell gru --hidden 3072 --batch 16 --steps 32 --optimizer sgd --momentum 0.9
measure "lstm 2x1024 E128 dropout B64 T64 adam, raw + validation" \
    --corpus tinyshakespeare --text-mode raw --max-tokens 12000 --cell lstm --hidden 1024 --layers 2 --dropout 0.2 --embedding 128 \
    --batch 64 --steps 64 --optimizer adam --lr 0.002
measure "rnn_tanh H4096 one-hot B32 T35 adam bf16" \
    --corpus timemachine --max-tokens 5000 --cell rnn_tanh --hidden 4096 --batch 32 --steps 35 --optimizer adam --lr 0.001 \
    --product-precision bfloat16
measure "lstm 2x2048 proj 512 recompute 16 B32 T64 rmsprop" \
    --corpus timemachine --max-tokens 8000 --cell lstm --hidden 2048 --projection 512 --layers 2 --recompute-interval 16 \
    --batch 32 --steps 64 --optimizer rmsprop --lr 0.001
measure "gru H1024 words (V 4580) B32 T35 sgd" \
    --corpus timemachine --text-mode words --max-tokens 5000 --cell gru --hidden 1024 --batch 32 --steps 35 --optimizer sgd
if [ "$failures" -gt 0 ]; then
    echo "estimate-vs-peak: $failures estimate(s) outside [0.8, 1.2] of the measured peak" >&2
    exit 1
fi
