#!/usr/bin/env bash
# Builds `rnn` (release) and prints it side by side with PyTorch: one pass of each, for a quick look. The measuring
# script is Scripts/bench/compare_torch.sh (ours and PyTorch alternated, medians, share of the FMA peak); this is
# that script with one run.
# Usage: Scripts/bench/compare.sh [threads] [seconds per training row]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product rnn >/dev/null
exec bash Scripts/bench/compare_torch.sh --threads "${1:-1}" --runs 1 --seconds "${2:-3}"
