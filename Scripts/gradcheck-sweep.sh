#!/usr/bin/env bash
# Gradient-check sweep (release build; debug builds run the C kernels unoptimised, so this stays out of `swift test`):
#  1. `rnn gradcheck` for every cell over 10 seeds at two sizes; any FAIL fails the sweep.
#  2. A deliberately corrupted ReLU-RNN backward (analytic gradient x 1.001 on one weight) must FAIL for every seed,
#     so skipping elements at ReLU kinks cannot hide a real error.
# Prints one line per run and the ReLU kink counts. Usage: Scripts/gradcheck-sweep.sh (after swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
rnn=.build/release/rnn
[ -x "$rnn" ] || { echo "gradcheck-sweep: build first: swift build -c release --product rnn" >&2; exit 1; }
sizes=("--input-size 4 --hidden 5 --layers 2 --batch 3 --steps 6"
       "--input-size 6 --hidden 9 --layers 3 --batch 4 --steps 5 --chunks 2 --last-step")
failures=0
for cell in rnn_tanh rnn_relu gru lstm; do
    for size in "${sizes[@]}"; do
        for seed in 0 1 2 3 4 5 6 7 8 9; do
            # shellcheck disable=SC2086
            if out="$("$rnn" gradcheck --cell "$cell" $size --seed "$seed")"; then status=ok; else status=FAILED; failures=$((failures + 1)); fi
            kinks="$(grep '^ReLU kinks' <<<"$out" || true)"
            echo "$cell seed $seed $size: $(tail -1 <<<"$out")${kinks:+ [$kinks]}"
            [ "$status" = ok ] || echo "$out"
        done
    done
done
for seed in 0 1 2 3 4 5 6 7 8 9; do
    for tensor in weight_ih_l0 weight_hh_l1; do
        if "$rnn" gradcheck --cell rnn_relu --seed "$seed" --corrupt "$tensor" >/dev/null; then
            echo "corrupted $tensor (seed $seed) passed: the check cannot see a wrong backward" >&2
            failures=$((failures + 1))
        fi
    done
done
echo "corrupted ReLU backward: FAIL for every seed, as it must"
[ "$failures" -eq 0 ] || { echo "gradcheck-sweep: $failures failure(s)" >&2; exit 1; }
echo "gradcheck-sweep: 80 checks passed"
