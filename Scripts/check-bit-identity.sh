#!/usr/bin/env bash
# Bit identity of training between two revisions on this machine (issue #27, "What must not change"): builds `rnn`
# (release) at BASE and at NEW, each in its own clone, trains with each binary
#   rnn train --preset d2l-rnn --epochs 20
#   rnn train --preset shakespeare-lstm --epochs 1 --max-tokens 50000 --schedule constant
#       (the preset's rate was constant before 0.3; this keeps the run the same computation on both sides)
#   rnn train --preset d2l-lstm --epochs 5 --product-precision bf16   (--precision before 0.3)
#   rnn train --preset d2l-gru --epochs 10
# all with --seed 0 --threads 1 --sample-every 0, and compares the two model.safetensors of each run tensor by tensor
# (Scripts/compare-safetensors.py: name, dtype, shape and bytes of every weight and of the trainer's `_trainer.*`
# tensors, i.e. optimizer moments and carried state; then the model/vocabulary/kernel-level metadata and the training
# state JSON, timing and version strings ignored). Prints one line per run and exits 1 on any difference.
#
# usage: Scripts/check-bit-identity.sh BASE [NEW]
#   BASE, NEW  git revisions of this repository (NEW defaults to HEAD); NEW=WORKTREE builds this working tree as it
#              is (tracked and untracked, non-ignored files), uncommitted edits included.
# environment:
#   RK_BIT_IDENTITY_CACHE  a folder that keeps the clones and their builds (one per commit), so a second run skips
#                          the builds; default: a temporary folder, removed at exit. Do not share it between
#                          concurrent runs.
#   RK_BIT_IDENTITY_SEED   the training seed (default 0, the presets' own).
#
# No preset sets a time limit (--time-limit is off unless given), so every run is bounded by its epochs alone; a
# run that reports "stopped at update" fails the check. Kernels are chosen at run time (AVX-512, AVX2+FMA, ...):
# compare on one machine. The bf16 run uses vdpbf16ps where the CPU has AVX512_BF16 (`lscpu | grep -o avx512_bf16`)
# and the same bf16 values through f32 FMA elsewhere, so its weights are only comparable on the same CPU.
set -euo pipefail

usage() { sed -n '/^# usage:/,/^#  *RK_BIT_IDENTITY_SEED/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h|--help) usage ;; esac

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
compare="$script_dir/compare-safetensors.py"
# shellcheck source=lib/build-revision.sh
source "$script_dir/lib/build-revision.sh"
seed=${RK_BIT_IDENTITY_SEED:-0}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
started=$(now)

resolve() { # a revision -> its full commit id (or WORKTREE)
    if [ "$1" = WORKTREE ]; then echo WORKTREE; return; fi
    git -C "$repo" rev-parse --verify --quiet "$1^{commit}" || { echo "check-bit-identity: unknown revision $1" >&2; exit 2; }
}
base=$(resolve "$1")
new=$(resolve "${2:-HEAD}")

if [ -n "${RK_BIT_IDENTITY_CACHE:-}" ]; then
    cache=$RK_BIT_IDENTITY_CACHE
    mkdir -p "$cache"
    cache=$(cd "$cache" && pwd)
else
    cache=$(mktemp -d "${TMPDIR:-/tmp}/rk-bit-identity.XXXXXX")
fi
runs=$(mktemp -d "${TMPDIR:-/tmp}/rk-bit-identity-runs.XXXXXX")
cleanup() { rm -rf "$runs"; [ -n "${RK_BIT_IDENTITY_CACHE:-}" ] || rm -rf "$cache"; }
trap cleanup EXIT

short() { [ "$1" = WORKTREE ] && echo WORKTREE || echo "${1:0:9}"; }

# build COMMIT -> sets $binary (Scripts/lib/build-revision.sh), then checks the options this script uses exist there.
build() {
    local rev=$1
    build_revision "$rev" check-bit-identity
    # Every option the runs use must exist at this revision. The products' precision is --product-precision since
    # 0.3 and --precision before (still accepted, hidden from the help): $precision_flag is the one this build names.
    local help missing=()
    help=$("$binary" train --help)
    for flag in --preset --epochs --max-tokens --schedule --seed --threads --sample-every --output; do
        grep -q -- "$flag" <<<"$help" || missing+=("$flag")
    done
    if grep -q -- "--product-precision" <<<"$help"; then precision_flag=--product-precision
    elif grep -q -- "--precision" <<<"$help"; then precision_flag=--precision
    else missing+=(--precision); fi
    if [ ${#missing[@]} -gt 0 ]; then
        echo "check-bit-identity: rnn train at $(short "$rev") has no ${missing[*]}" >&2
        exit 2
    fi
}

echo "check-bit-identity: BASE $(short "$base") vs NEW $(short "$new") (seed $seed, 1 thread; CPU $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')$(grep -qw avx512_bf16 /proc/cpuinfo && echo ', AVX512_BF16'))"
build "$base"; base_binary=$binary; base_precision=$precision_flag
if [ "$new" = "$base" ]; then new_binary=$base_binary; new_precision=$base_precision
else build "$new"; new_binary=$binary; new_precision=$precision_flag; fi

names=(d2l-rnn shakespeare-lstm d2l-lstm-bf16 d2l-gru)
arguments=(
    "--preset d2l-rnn --epochs 20"
    "--preset shakespeare-lstm --epochs 1 --max-tokens 50000 --schedule constant"
    "--preset d2l-lstm --epochs 5 PRECISION bf16"
    "--preset d2l-gru --epochs 10"
)
status=0
results=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    for side in base new; do
        [ $side = base ] && bin=$base_binary || bin=$new_binary
        [ $side = base ] && flag=$base_precision || flag=$new_precision
        args=${arguments[$i]/PRECISION/$flag}
        out="$runs/$side/$name"
        mkdir -p "$runs/$side"
        t=$(now)
        # shellcheck disable=SC2086 # the arguments are words
        if ! "$bin" train $args --seed "$seed" --threads 1 --sample-every 0 --output "$out" >"$out.log" 2>&1 </dev/null; then
            tail -n 20 "$out.log" >&2
            echo "check-bit-identity: rnn train $args failed with the $side binary (log above)" >&2
            exit 2
        fi
        if grep -q "stopped at update" "$out.log"; then
            echo "check-bit-identity: the $side run of $name stopped before its last epoch (a time limit?)" >&2
            exit 2
        fi
        echo "train $name ($side): $(since "$t") s"
    done
    line=$(python3 "$compare" "$runs/base/$name/model.safetensors" "$runs/new/$name/model.safetensors") || status=1
    results+=("$name: $line")
done
printf '%s\n' "${results[@]}"
echo "total: $(since "$started") s"
exit $status
