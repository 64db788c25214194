#!/usr/bin/env python3
"""Summarizes the runs of Scripts/bench/compare_revisions.sh (standard library only).

usage: compare_revisions.py RESULTS THRESHOLD OLD_LABEL NEW_LABEL

RESULTS holds one tab-separated line per measured row: threads, run, side (old|new), row name, tokens/s.
Prints a markdown table per thread count (row, old and new median tokens/s, median/min/max of the per-run ratios
new/old, each run's new against the same run's old) and a verdict line: the median over rows of the per-row median
ratio against THRESHOLD. Rows measured on one side only are listed and left out of the verdict.
Exits 1 when a thread count fails, 2 when there is nothing to compare.
"""
import statistics
import sys
from collections import defaultdict


def main():
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, threshold, old_label, new_label = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    # data[threads][row][side][run] = tokens/s
    data = defaultdict(lambda: defaultdict(lambda: {"old": {}, "new": {}}))
    order = defaultdict(list)  # rows in the order the bench prints them
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            threads, run, side, row, rate = line.split("\t")
            threads, run = int(threads), int(run)
            if row not in order[threads]:
                order[threads].append(row)
            data[threads][row][side][run] = float(rate)
    if not data:
        print("compare_revisions: no rows were measured (does RK_BENCH_FILTER match a row name?)", file=sys.stderr)
        return 2

    status = 0
    for threads in sorted(data):
        rows = data[threads]
        print(f"\n### {threads} thread{'s' if threads != 1 else ''}: old {old_label}, new {new_label}\n")
        print("| row | old median tokens/s | new median tokens/s | median ratio new/old | min ratio | max ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        medians, one_sided = [], []
        for row in order[threads]:
            old, new = rows[row]["old"], rows[row]["new"]
            pairs = sorted(set(old) & set(new))
            if not pairs:
                one_sided.append((row, "old" if old else "new"))
                continue
            ratios = [new[r] / old[r] for r in pairs]
            m = statistics.median(ratios)
            medians.append(m)
            print(f"| {row} | {statistics.median(old.values()):.0f} | {statistics.median(new.values()):.0f} "
                  f"| {m:.3f} | {min(ratios):.3f} | {max(ratios):.3f} |")
        for row, side in one_sided:
            print(f"\n(only measured at {side}, not compared: {row})")
        if not medians:
            print(f"\nthreads {threads}: no row measured on both sides: FAIL")
            status = max(status, 2)
            continue
        overall = statistics.median(medians)
        verdict = "PASS" if overall >= threshold else "FAIL"
        if verdict == "FAIL":
            status = max(status, 1)
        print(f"\nthreads {threads}: median ratio over {len(medians)} rows = {overall:.3f} "
              f"(runs per side: {max(len(rows[r]['new']) for r in order[threads])}) -> {verdict} (>= {threshold})")
    return status


if __name__ == "__main__":
    sys.exit(main())
