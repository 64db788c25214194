#!/usr/bin/env bash
# How far data-parallel training under mpirun drifts from one process: d2l-rnn (SGD) and a 2-layer LSTM with dropout
# and Adam on the d2l text (8 updates per epoch), after 24 and 504 updates, with 2 and 3 processes (3 splits the 32
# rows 11/11/10). Prints each epoch loss's largest relative difference and the weights' largest absolute difference
# (and relative to the tensor's largest magnitude). The mpirun tests check the 24-update figures against 1e-5.
#
# Usage: Scripts/bench/mpi_equivalence.sh [rnn binary]   (release build; needs mpirun and python3; about a minute)
set -euo pipefail
cd "$(dirname "$0")/../.."
RNN="${1:-.build/release/rnn}"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

models=(
    "d2l-rnn|"
    "lstm-dropout-adam|--cell lstm --layers 2 --hidden 64 --dropout 0.3 --optimizer adam --lr 0.01"
)
echo "| model | updates | processes | epoch loss, max relative difference | weights, max absolute difference | relative to the tensor's max |"
echo "|---|---|---|---|---|---|"
for entry in "${models[@]}"; do
    IFS='|' read -r name options <<<"$entry"
    for epochs in 3 63; do
        for processes in 1 2 3; do
            out="$work/$name-$epochs-$processes"
            launcher=()
            [ "$processes" -gt 1 ] && launcher=("${MPIRUN[@]}" -np "$processes")
            # shellcheck disable=SC2086
            "${launcher[@]}" "$RNN" train $options --epochs "$epochs" --sample-every 0 --output "$out" >/dev/null
            [ "$processes" -eq 1 ] && continue
            python3 - "$work/$name-$epochs-1" "$out" "$name" "$((epochs * 8))" "$processes" <<'PYTHON'
import json, math, struct, sys
reference, run, name, updates, processes = sys.argv[1:]
def weights(folder):
    data = open(folder + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for key, v in header.items():
        if key == "__metadata__" or key.startswith("_trainer") or v["dtype"] != "F32":
            continue
        start, end = v["data_offsets"]
        out[key] = struct.unpack(f"<{(end - start) // 4}f", data[8 + n + start:8 + n + end])
    return out
def losses(folder):
    return [math.log(json.loads(line)["train_perplexity"]) for line in open(folder + "/metrics.jsonl")]
a, b = weights(reference), weights(run)
absolute = max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)
relative = max(max(abs(x - y) for x, y in zip(a[k], b[k])) / max(abs(x) for x in a[k]) for k in a)
loss = max(abs(x - y) / x for x, y in zip(losses(reference), losses(run)))
print(f"| {name} | {updates} | {processes} | {loss:.1e} | {absolute:.1e} | {relative:.1e} |")
PYTHON
        done
    done
done
