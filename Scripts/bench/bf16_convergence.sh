#!/usr/bin/env bash
# Mixed precision against float32: the five d2l presets (500 epochs each, their own update counts) and
# shakespeare-lstm for a fixed 2 epochs at a constant rate (about 626 updates, validation on the last 10%), each once with
# --product-precision float32 and once with --product-precision bf16; prints final perplexities side by side and writes the
# per-epoch curves to docs/data/bf16-convergence/<preset>-<precision>.jsonl.
# Usage: Scripts/bench/bf16_convergence.sh [rnn binary] [threads]   (release build; about 8 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
RNN="${1:-.build/release/rnn}"
THREADS="${2:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p docs/data/bf16-convergence
echo "| run | float32 | bf16 | difference |"
echo "|---|---|---|---|"
for preset in d2l-rnn d2l-rnn-random d2l-gru d2l-lstm d2l-deep-lstm shakespeare-lstm; do
    extra=(--sample-every 0)
    [ "$preset" = shakespeare-lstm ] && extra+=(--epochs 2 --schedule constant)  # the rate of the measured runs
    for precision in float32 bf16; do
        "$RNN" train --preset "$preset" --product-precision "$precision" --threads "$THREADS" "${extra[@]}" --output "$work/$preset-$precision" >"$work/$preset-$precision.log"
        cp "$work/$preset-$precision/metrics.jsonl" "docs/data/bf16-convergence/$preset-$precision.jsonl"
    done
    python3 - "$work/$preset-float32/metrics.jsonl" "$work/$preset-bf16/metrics.jsonl" "$preset" <<'PYTHON'
import json, math, sys
a, b = ([json.loads(line) for line in open(p)] for p in sys.argv[1:3])
name = sys.argv[3]
if a[-1].get("validation_perplexity"):
    # Validation loss in nats per character (the issue's tiny Shakespeare criterion).
    x, y = math.log(a[-1]["validation_perplexity"]), math.log(b[-1]["validation_perplexity"])
    print(f"| {name} (validation loss, nats/char, {a[-1]['step']} updates) | {x:.4f} | {y:.4f} | {y - x:+.4f} |")
else:
    x, y = a[-1]["train_perplexity"], b[-1]["train_perplexity"]
    print(f"| {name} (perplexity after {a[-1]['step']} updates) | {x:.3f} | {y:.3f} | {y - x:+.3f} |")
PYTHON
done
