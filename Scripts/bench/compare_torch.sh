#!/usr/bin/env bash
# `rnn bench` against PyTorch (Scripts/bench/torch_bench.py) on this machine, repeated and interleaved: for each
# thread count, RUNS alternating full passes (ours, PyTorch, ours, PyTorch, ...), then per row the medians, the
# median and range of the per-pair ratios ours/PyTorch, and for training rows GFLOP/s of both from our FLOP count per
# token and their share of the single-core FMA peak times the thread count. Builds nothing.
#
# Usage: Scripts/bench/compare_torch.sh [--threads "1 2"] [--runs 3] [--seconds 3] [--rnn PATH] [--python PATH]
#                                       [--filter TEXT] [--rows train|generate|all]
#   --threads  thread counts, space-separated (default "1"); PyTorch's through torch_bench.py --threads
#              (torch.set_num_threads) and OMP_NUM_THREADS
#   --runs     passes of each per thread count (default 3)
#   --seconds  seconds per training row (default 3; generation rows are a fixed number of tokens)
#   --rnn      the rnn binary (default .build/release/rnn of this checkout)
#   --python   Python with torch (default /work/venv/bin/python if it exists, else python3)
#   --filter   only our rows whose name contains TEXT (rnn bench --filter); torch_bench.py has no filter, so its
#              rows run in full (narrowed to train or generate when the filter leaves only those) and are matched
#   --rows     train, generate or all (default all)
# Bf16 training rows are compared with PyTorch's torch.autocast bf16 rows; generation rows with PyTorch's rows of
# the same name (float32 nn.*Cell, bf16 modules, int8 quantize_dynamic). Exits non-zero only on errors.
set -euo pipefail

usage() { sed -n '7,8s/^# //p' "$0"; exit "${1:-2}"; }
die() { echo "compare_torch.sh: $*" >&2; exit 1; }

caller_dir=$PWD
repo=$(cd "$(dirname "$0")/../.." && pwd)
threads_list=1 runs=3 seconds=3 rnn="" python="" filter="" rows=all
while [ $# -gt 0 ]; do
    case $1 in
        --threads|--runs|--seconds|--rnn|--python|--filter|--rows)
            [ $# -ge 2 ] || usage >&2
            case $1 in
                --threads) threads_list=$2 ;; --runs) runs=$2 ;; --seconds) seconds=$2 ;; --rnn) rnn=$2 ;;
                --python) python=$2 ;; --filter) filter=$2 ;; --rows) rows=$2 ;;
            esac
            shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "compare_torch.sh: unknown argument: $1" >&2; usage >&2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
[[ $seconds =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "--seconds must be a number, not '$seconds'"
case $rows in train|generate|all) ;; *) die "--rows must be train, generate or all, not '$rows'" ;; esac
read -r -a threads <<< "$threads_list"
[ ${#threads[@]} -gt 0 ] || die "--threads is empty"
for t in "${threads[@]}"; do [[ $t =~ ^[1-9][0-9]*$ ]] || die "--threads: '$t' is not a positive integer"; done
[ "$(printf '%s\n' "${threads[@]}" | sort -u | wc -l)" = ${#threads[@]} ] || die "--threads repeats a count"

# Paths given on the command line are relative to the caller's directory; the default binary to the checkout.
if [ -z "$rnn" ]; then rnn=$repo/.build/release/rnn
elif [[ $rnn != /* ]]; then rnn=$caller_dir/$rnn; fi
[ -f "$rnn" ] && [ -x "$rnn" ] || die "no rnn binary at $rnn (build it first: swift build -c release --product rnn)"
if [ -z "$python" ]; then
    if [ -x /work/venv/bin/python ]; then python=/work/venv/bin/python; else python=python3; fi
elif [[ $python == */* && $python != /* ]]; then python=$caller_dir/$python; fi
command -v "$python" >/dev/null || die "no Python at $python"
torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) \
    || die "$python cannot import torch (pip install -r Scripts/bench/requirements.txt)"
cd "$repo"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare_torch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rnn_version=$("$rnn" --version) || die "$rnn --version failed"
# The checkout's commit when the binary is its own build (a dirty tree is marked): the version alone names no commit.
if [ "$rnn" = "$repo/.build/release/rnn" ] && commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null); then
    git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
    rnn_version="$rnn_version at $commit"
fi
rnn_mtime=$(stat -c %Y "$rnn")
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') || cpu=unknown
family=$(lscpu 2>/dev/null | awk -F: '/^CPU family:/ { gsub(/ /, "", $2); print $2 }') || true
model=$(lscpu 2>/dev/null | awk -F: '/^Model:/ { gsub(/ /, "", $2); print $2 }') || true
flags=$(grep -m1 '^flags' /proc/cpuinfo) || flags=""
has() { [[ " ${flags#*:} " == *" $1 "* ]] && echo yes || echo no; }

# The single-core FMA peak once: --peak with a filter that matches no row, so no row runs. The first peak line is
# the detected level.
echo "measuring the FMA peak ..." >&2
"$rnn" bench --peak --csv --threads 1 --rows "$rows" --filter "@@compare_torch: no row@@" > "$tmp/peak.csv" \
    || die "rnn bench --peak failed"
peak_line=$(grep -m1 '^peak ' "$tmp/peak.csv") || die "rnn bench --peak printed no peak line"
peak_level=$(echo "$peak_line" | cut -d, -f1 | sed 's/^peak //')
peak=$(echo "$peak_line" | cut -d, -f3)
bf16_peak=$(awk -F, '/^peak bf16 dot,/ { printf "%.1f", $3 }' "$tmp/peak.csv")

filter_args=()
[ -n "$filter" ] && filter_args=(--filter "$filter")
torch_rows=$rows
for t in "${threads[@]}"; do
    mkdir "$tmp/t$t"
    for ((i = 1; i <= runs; i++)); do
        echo "threads $t, run $i/$runs: RecurrentKit ..." >&2
        "$rnn" bench --csv --threads "$t" --seconds "$seconds" --rows "$rows" "${filter_args[@]}" \
            > "$tmp/t$t/ours.$i.csv" || die "rnn bench failed (threads $t, run $i)"
        if [ "$t" = "${threads[0]}" ] && [ "$i" = 1 ]; then
            grep -q . "$tmp/t$t/ours.$i.csv" || die "no rnn bench row matches --rows $rows${filter:+ --filter '$filter'}"
            if [ "$rows" = all ] && [ -n "$filter" ]; then  # torch_bench.py has no filter: skip a kind we lack
                if ! grep -q '^generate ' "$tmp/t$t/ours.$i.csv"; then torch_rows=train
                elif ! grep -q '^train ' "$tmp/t$t/ours.$i.csv"; then torch_rows=generate; fi
            fi
        fi
        echo "threads $t, run $i/$runs: PyTorch ..." >&2
        OMP_NUM_THREADS=$t "$python" Scripts/bench/torch_bench.py --csv --threads "$t" --seconds "$seconds" \
            --rows "$torch_rows" > "$tmp/t$t/theirs.$i.csv" || die "torch_bench.py failed (threads $t, run $i)"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "CPU: $cpu (family ${family:-?}, model ${model:-?}; avx512_bf16 $(has avx512_bf16), avx512_vnni $(has avx512_vnni));" \
    "torch $torch_version; rnn $rnn_version; threads ${threads[*]}; runs $runs; seconds per training row $seconds;" \
    "load average before $load_before, after $load_after"
echo "FMA peak ($peak_level, the detected level): $(printf '%.1f' "$peak") GFLOP/s per core, the base of % of peak" \
    "(bf16 rows too, so they can pass 100%${bf16_peak:+; bf16 dot-product peak $bf16_peak GFLOP/s per core});" \
    "rows $rows${filter:+; filter '$filter'}"
if [ "$(stat -c %Y "$rnn" 2>/dev/null || echo gone)" != "$rnn_mtime" ]; then
    echo "WARNING: $rnn changed during the measurement; the runs may mix two builds"
fi
echo
for t in "${threads[@]}"; do
    "$python" Scripts/bench/compare_torch.py "$tmp/t$t" --threads "$t" --runs "$runs" --peak "$peak" \
        --peak-level "$peak_level" --summary "$tmp/t$t/summary.txt" || die "compare_torch.py failed (threads $t)"
done
for t in "${threads[@]}"; do cat "$tmp/t$t/summary.txt"; done
