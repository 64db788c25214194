#!/usr/bin/env bash
# Data-parallel scaling of `rnn train` under mpirun, measured on this machine, and predicted for a cluster.
#
#  1. For each model, on this machine: 1 process x 2 threads against `mpirun -np 2` x 1 thread (the same global batch),
#     tokens/s of the second epoch and, for the MPI run, the time per update spent in the sums (rank 0's figure);
#     and 1 process x 1 thread at the per-process batch, the compute time per update a rank of a cluster would have.
#  2. From that compute time and the parameter count, the predicted efficiency at 8, 64 and 512 ranks on a 25 Gb/s
#     network with a fixed per-rank batch (ring allreduce: 2(N-1) steps of latency plus 2(N-1)/N x bytes / bandwidth;
#     no overlap of communication with computation, which is what `rnn train` does).
#
# Usage: Scripts/bench/mpi_scaling.sh [rnn binary]   (release build; needs mpirun; about 4 minutes on an idle machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
RNN="${1:-.build/release/rnn}"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# name | options (the global batch) | per-process batch on a cluster
models=(
    "shakespeare-lstm|--preset shakespeare-lstm --max-tokens 240000 --validation-fraction 0 --epochs 2|32"
    "lstm-h1024|--corpus tinyshakespeare --text-mode raw --cell lstm --hidden 1024 --embedding 1024 --batch 64 --steps 35 --initialization pytorch --optimizer adam --lr 0.001 --max-tokens 100000 --validation-fraction 0 --epochs 2|64"
)

rate() { grep -o '[0-9]* tokens/s' "$1" | head -n 1 | cut -d' ' -f1; }
params() { grep -o '[0-9]* parameters' "$1" | head -n 1 | cut -d' ' -f1; }

results="$work/results.txt"
for entry in "${models[@]}"; do
    IFS='|' read -r name options rankBatch <<<"$entry"
    # shellcheck disable=SC2086
    "$RNN" train $options --sample-every 0 --threads 2 --output "$work/$name-1x2" >"$work/$name-1x2.log"
    # shellcheck disable=SC2086
    "${MPIRUN[@]}" -np 2 "$RNN" train $options --sample-every 0 --threads 1 --output "$work/$name-2x1" >"$work/$name-2x1.log"
    # shellcheck disable=SC2086
    "$RNN" train $options --batch "$rankBatch" --sample-every 0 --threads 1 --output "$work/$name-rank" >"$work/$name-rank.log"
    sums="$(grep -o 'MPI: [0-9.]* ms per update' "$work/$name-2x1.log" | grep -o '[0-9.]*' | head -n 1)"
    steps="$(grep -o 'chunks of [0-9]*' "$work/$name-1x2.log" | grep -o '[0-9]*')"
    echo "$name $(rate "$work/$name-1x2.log") $(rate "$work/$name-2x1.log") $sums $(rate "$work/$name-rank.log") $rankBatch $steps $(params "$work/$name-1x2.log")" >>"$results"
done

python3 - "$results" <<'PYTHON'
import sys
rows = [line.split() for line in open(sys.argv[1])]
print("## Measured here (tokens/s of the whole job, second epoch)")
print("| model | 1 process x 2 threads | mpirun -np 2 x 1 thread | ratio | sums per update (rank 0) | share of update |")
print("|---|---|---|---|---|---|")
for name, one, two, sums, rank, b, t, p in rows:
    one, two, sums = float(one), float(two), float(sums)
    update = float(b) * float(t) / two  # seconds per update of the 2-process job (the global batch is b here)
    print(f"| {name} | {one:,.0f} | {two:,.0f} | {two / one:.2f} | {sums:.2f} ms | {sums / 1000 / update:.1%} |")
print()
bandwidth = 25e9 / 8       # bytes/s, 25 Gb/s
latency = 20e-6            # s per message step (TCP on 25 GbE; RDMA is ~2 us)
print(f"## Predicted efficiency, fixed per-rank batch, ring allreduce on 25 Gb/s (latency {latency * 1e6:.0f} us per step)")
print("| model | parameters | gradient MB | per-rank batch | compute per update | N = 8 | N = 64 | N = 512 |")
print("|---|---|---|---|---|---|---|---|")
for name, one, two, sums, rank, b, t, p in rows:
    p, b, t, rank = int(p), int(b), int(t), float(rank)
    compute = b * t / rank                 # seconds per update of one rank (1 thread, this machine)
    nbytes = 4 * p
    cells = []
    for n in (8, 64, 512):
        ring = 2 * (n - 1) * latency + 2 * (n - 1) / n * nbytes / bandwidth
        small = 2 * 2 * (n - 1).bit_length() * latency  # the loss and stop-decision sums (recursive doubling)
        cells.append(f"{compute / (compute + ring + small):.0%}")
    print(f"| {name} | {p:,} | {nbytes / 1e6:.1f} | {b} | {compute * 1000:.0f} ms | " + " | ".join(cells) + " |")
PYTHON
