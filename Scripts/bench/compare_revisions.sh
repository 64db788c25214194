#!/usr/bin/env bash
# Training speed of two revisions on this machine (issue #27, "What must not change": `rnn bench` training rows,
# median ratio new/old >= 0.97 over 5 alternated runs). Builds `rnn` (release) at BASE and at NEW, each in its own
# `git clone --shared`, then runs
#   rnn bench --rows train --csv --threads T [--seconds S] [--filter F]
# alternately with the old and the new binary (old, new, old, new, ...) RUNS times each, for each thread count T,
# and prints per thread count a markdown table (row, old and new median tokens/s, median, min and max of the per-run
# ratios new/old) and the median ratio over rows with PASS/FAIL against 0.97. Exits 1 on FAIL, 2 on an error.
#
# usage: Scripts/bench/compare_revisions.sh BASE [NEW] [RUNS]
#   BASE, NEW  git revisions of this repository (NEW defaults to HEAD); NEW=WORKTREE builds this working tree as it
#              is (tracked and untracked, non-ignored files), uncommitted edits included. NEW=BASE measures the noise
#              (an A/A comparison of one binary against itself).
#   RUNS       runs per side and thread count (default 5).
# environment:
#   RK_BENCH_CACHE    a folder that keeps the clones and their builds (one per commit, the layout of
#                     Scripts/check-bit-identity.sh, so RK_BENCH_CACHE=$RK_BIT_IDENTITY_CACHE reuses its builds);
#                     default: a temporary folder, removed at exit. Do not share it between concurrent runs.
#   RK_BENCH_THREADS  the thread counts (default "1 2").
#   RK_BENCH_SECONDS  seconds per training row, passed as --seconds (default: the bench's own, 3).
#   RK_BENCH_FILTER   only rows whose name contains this text, passed as --filter (case-sensitive, e.g. "lstm H512").
#
# Wall-clock measurements: run on an otherwise idle machine (the load average is printed before and after).
set -euo pipefail

usage() { sed -n '/^# usage:/,/^#  *RK_BENCH_FILTER/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 3 ] || usage
case "$1" in -h|--help) usage ;; esac

script_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel)
summarize="$script_dir/compare_revisions.py"
# shellcheck source=../lib/build-revision.sh
source "$script_dir/../lib/build-revision.sh"
runs_per_side=${3:-5}
threads_list=${RK_BENCH_THREADS:-1 2}
seconds=${RK_BENCH_SECONDS:-}
filter=${RK_BENCH_FILTER:-}
threshold=0.97

[[ "$runs_per_side" =~ ^[1-9][0-9]*$ ]] || { echo "compare_revisions: RUNS must be a positive integer, not '$runs_per_side'" >&2; exit 2; }
for t in $threads_list; do
    [[ "$t" =~ ^[1-9][0-9]*$ ]] || { echo "compare_revisions: RK_BENCH_THREADS must hold positive integers, not '$t'" >&2; exit 2; }
done
[ -n "${threads_list// /}" ] || { echo "compare_revisions: RK_BENCH_THREADS is empty" >&2; exit 2; }
if [ -n "$seconds" ]; then
    [[ "$seconds" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "compare_revisions: RK_BENCH_SECONDS must be a number, not '$seconds'" >&2; exit 2; }
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
started=$(now)

resolve() { # a revision -> its full commit id (or WORKTREE)
    if [ "$1" = WORKTREE ]; then echo WORKTREE; return; fi
    git -C "$repo" rev-parse --verify --quiet "$1^{commit}" || { echo "compare_revisions: unknown revision $1" >&2; exit 2; }
}
base=$(resolve "$1")
new=$(resolve "${2:-HEAD}")

if [ -n "${RK_BENCH_CACHE:-}" ]; then
    cache=$RK_BENCH_CACHE
    mkdir -p "$cache"
    cache=$(cd "$cache" && pwd)
else
    cache=$(mktemp -d "${TMPDIR:-/tmp}/rk-bench-cache.XXXXXX")
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rk-bench-runs.XXXXXX")
cleanup() { rm -rf "$work"; [ -n "${RK_BENCH_CACHE:-}" ] || rm -rf "$cache"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

short() { [ "$1" = WORKTREE ] && echo WORKTREE || echo "${1:0:9}"; }
describe() { # a revision -> "cc145aaa7 subject" or "WORKTREE (HEAD a12d594 + uncommitted edits)"
    if [ "$1" = WORKTREE ]; then
        echo "WORKTREE (HEAD $(git -C "$repo" rev-parse --short=9 HEAD) + $(git -C "$repo" status --porcelain | wc -l) changed/untracked files)"
    else
        git -C "$repo" log -1 --format='%h %<(60,trunc)%s (%cs)' --abbrev=9 "$1" | sed 's/  *(/ (/'
    fi
}

# build COMMIT -> sets $binary (Scripts/lib/build-revision.sh), then checks the options this script uses exist there.
build() {
    local rev=$1
    build_revision "$rev" compare_revisions
    local help missing=()
    help=$("$binary" bench --help)
    for flag in --rows --csv --threads --seconds --filter; do
        grep -q -- "$flag" <<<"$help" || missing+=("$flag")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "compare_revisions: rnn bench at $(short "$rev") has no ${missing[*]}" >&2
        exit 2
    fi
}

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
echo "compare_revisions: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "CPU: ${cpu:-unknown} ($(nproc) usable cores$(grep -qw avx512f /proc/cpuinfo && echo ', AVX-512')$(grep -qw avx512_bf16 /proc/cpuinfo && echo ', AVX512_BF16')); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "old (BASE): $(describe "$base")"
echo "new (NEW):  $(describe "$new")"
echo "runs per side: $runs_per_side, threads: $threads_list, seconds per row: ${seconds:-default}, filter: ${filter:-none}"
build "$base"; old_binary=$binary
if [ "$new" = "$base" ]; then new_binary=$old_binary; else build "$new"; new_binary=$binary; fi

bench_args=(bench --rows train --csv)
[ -z "$seconds" ] || bench_args+=(--seconds "$seconds")
[ -z "$filter" ] || bench_args+=(--filter "$filter")

results="$work/results.tsv"
: >"$results"
measure_started=$(now)
for t in $threads_list; do
    for ((run = 1; run <= runs_per_side; run++)); do
        for side in old new; do
            [ $side = old ] && bin=$old_binary || bin=$new_binary
            log="$work/t$t-r$run-$side.csv"
            s=$(now)
            if ! "$bin" "${bench_args[@]}" --threads "$t" >"$log" 2>&1 </dev/null; then
                tail -n 20 "$log" >&2
                echo "compare_revisions: rnn ${bench_args[*]} --threads $t failed with the $side binary (log above)" >&2
                exit 2
            fi
            # CSV lines: name,tokens_per_second,gflops (names hold no comma); other lines (warnings) are skipped.
            count=$(awk -F, -v t="$t" -v r="$run" -v s="$side" 'NF == 3 && $1 ~ /^train / && $2 ~ /^[0-9.]+$/ {
                        printf "%s\t%s\t%s\t%s\t%s\n", t, r, s, $1, $2; n++ } END { print n + 0 > "/dev/stderr" }' \
                        "$log" 2>&1 >>"$results")
            echo "threads $t run $run/$runs_per_side $side: $count rows, $(since "$s") s" >&2
            [ "$count" -gt 0 ] || { echo "compare_revisions: no training row measured (does RK_BENCH_FILTER '$filter' match a row name? names are lowercase, e.g. 'train rnn_tanh H512 B32 T35 V28 one-hot')" >&2; exit 2; }
        done
    done
done

status=0
python3 "$summarize" "$results" "$threshold" "$(short "$base")" "$(short "$new")" || status=$?
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "time: measuring $(since "$measure_started") s, total $(since "$started") s"
exit $status
