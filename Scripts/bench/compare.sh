#!/usr/bin/env bash
# Runs `rnn bench` and the PyTorch rows side by side on this machine and prints the ratio table.
# Usage: Scripts/bench/compare.sh [threads] [seconds per training row]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-1}
seconds=${2:-3}
swift build -c release --product rnn >/dev/null
python3 -c "import torch" 2>/dev/null || { echo "PyTorch is not installed: pip install -r Scripts/bench/requirements.txt" >&2; exit 1; }
ours=$(.build/release/rnn bench --csv --threads "$threads" --seconds "$seconds")
theirs=$(python3 Scripts/bench/torch_bench.py --csv --threads "$threads" --seconds "$seconds")
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), threads: $threads, torch $(python3 -c 'import torch; print(torch.__version__)')"
printf '| %-52s | %12s | %12s | %6s |\n' "row" "RecurrentKit" "PyTorch" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..8})"
while IFS=, read -r name ours_rate _; do
    torch_rate=$(echo "$theirs" | awk -F, -v n="$name" '$1 == n { print $2 }')
    if [ -z "$torch_rate" ] && [[ "$name" == train*" bf16" ]]; then  # our mixed precision against torch.autocast
        torch_rate=$(echo "$theirs" | awk -F, -v n="${name% bf16} autocast bf16" '$1 == n { print $2 }')
    fi
    if [ -n "$torch_rate" ]; then
        ratio=$(awk -v a="$ours_rate" -v b="$torch_rate" 'BEGIN { printf "%.2f", a / b }')
        printf '| %-52s | %12s | %12s | %6s |\n' "$name" "$ours_rate" "$torch_rate" "${ratio}x"
    fi
done <<< "$ours"
