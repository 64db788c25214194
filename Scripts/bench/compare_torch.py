#!/usr/bin/env python3
"""The table of Scripts/bench/compare_torch.sh for one thread count (Python 3 standard library only).

Usage: compare_torch.py DIR --threads N --runs R --peak GFLOPS [--peak-level NAME] [--summary FILE]

DIR holds ours.<i>.csv (`rnn bench --csv`: name,tokens_per_second,gflops) and theirs.<i>.csv
(`torch_bench.py --csv`: name,tokens_per_second) for i = 1...R, run alternately (ours.1, theirs.1, ours.2, ...).
Prints a markdown table with one line per row of ours, then a summary line (to FILE with --summary). Our bf16
training rows are matched with PyTorch's "autocast bf16" rows, every other row with PyTorch's row of the same name
(as compare.sh).
"""
import argparse
import os
import statistics
import sys


def read_csv(path, fields):
    """{name: [numbers]} from a CSV file of `fields` columns; ignores lines of another shape (e.g. peak lines)."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(",")
            if len(parts) != fields or parts[0].startswith("peak "):
                continue
            try:
                rows[parts[0]] = [float(x) for x in parts[1:]]
            except ValueError:
                continue
    return rows


def torch_name(name, theirs):
    """PyTorch's row for our row `name`, or None."""
    if name in theirs:
        return name
    if name.startswith("train") and name.endswith(" bf16"):
        autocast = name[: -len(" bf16")] + " autocast bf16"
        if autocast in theirs:
            return autocast
    return None


def fmt_rate(x):
    return f"{x:,.0f}".replace(",", " ") if x is not None else "–"


def fmt_ratio(x):
    return f"{x:.2f}x"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--peak", type=float, required=True, help="single-core FMA peak, GFLOP/s")
    p.add_argument("--peak-level", default="FMA")
    p.add_argument("--summary", help="write the summary line to this file instead of after the table")
    a = p.parse_args()

    ours_runs = [read_csv(os.path.join(a.dir, f"ours.{i}.csv"), 3) for i in range(1, a.runs + 1)]
    theirs_runs = [read_csv(os.path.join(a.dir, f"theirs.{i}.csv"), 2) for i in range(1, a.runs + 1)]
    names = list(ours_runs[0])  # our order
    for i, run in enumerate(ours_runs[1:], start=2):
        if list(run) != names:
            sys.exit(f"compare_torch.py: run {i} of rnn bench printed other rows than run 1")
    if not names:
        sys.exit("compare_torch.py: rnn bench printed no rows")
    peak_total = a.peak * a.threads

    print(f"### {a.threads} thread{'s' if a.threads != 1 else ''}\n")
    print(
        "| row | RecurrentKit tokens/s | PyTorch tokens/s | ratio | ratio min-max | RecurrentKit GFLOP/s "
        f"| PyTorch GFLOP/s | RecurrentKit % of peak | PyTorch % of peak |"
    )
    print("|:--|--:|--:|--:|--:|--:|--:|--:|--:|")
    train_ratios, generate_ratios, unmatched = [], [], []
    for name in names:
        ours_rate = [run[name][0] for run in ours_runs]
        ours_gflops = [run[name][1] for run in ours_runs]
        ours_med = statistics.median(ours_rate)
        other = torch_name(name, theirs_runs[0])
        shown = name + (" (PyTorch: autocast bf16)" if other and other != name else "")
        if other is None or any(other not in run for run in theirs_runs):
            unmatched.append(name)
            print(f"| {shown} | {fmt_rate(ours_med)} | – | – | – | | | | |")
            continue
        theirs_rate = [run[other][0] for run in theirs_runs]
        theirs_med = statistics.median(theirs_rate)
        ratios = [o / t if t > 0 else float("inf") for o, t in zip(ours_rate, theirs_rate)]
        ratio = statistics.median(ratios)
        cells = [fmt_rate(ours_med), fmt_rate(theirs_med), fmt_ratio(ratio),
                 f"{min(ratios):.2f}-{max(ratios):.2f}"]
        if name.startswith("train"):
            train_ratios.append((ratio, name))
            # One FLOP count for both: ours per token (gflops * 1e9 / tokens per second), applied to both rates.
            per_token = statistics.median(g * 1e9 / r for g, r in zip(ours_gflops, ours_rate) if r > 0)
            ours_g, theirs_g = per_token * ours_med / 1e9, per_token * theirs_med / 1e9
            cells += [f"{ours_g:.1f}", f"{theirs_g:.1f}",
                      f"{100 * ours_g / peak_total:.1f}%", f"{100 * theirs_g / peak_total:.1f}%"]
        else:
            generate_ratios.append((ratio, name))
            cells += ["", "", "", ""]
        print(f"| {shown} | " + " | ".join(cells) + " |")

    print()
    print(f"% of peak: of {a.threads} x the single-core {a.peak_level} FMA peak ({a.peak:.1f} GFLOP/s per core); "
          "GFLOP/s of both from RecurrentKit's FLOP count per token; ratio: median of the per-pair ratios "
          "RecurrentKit/PyTorch.")
    summary = [f"threads {a.threads}:"]
    if train_ratios:
        low = min(train_ratios)
        summary.append(f"training ratio median {fmt_ratio(statistics.median(r for r, _ in train_ratios))} "
                       f"over {len(train_ratios)} rows, smallest {fmt_ratio(low[0])} ({low[1]});")
    else:
        summary.append("no training rows;")
    if generate_ratios:
        low = min(generate_ratios)
        summary.append(f"smallest generation ratio {fmt_ratio(low[0])} ({low[1]})")
    else:
        summary.append("no generation rows")
    if unmatched:
        summary.append(f"; {len(unmatched)} row(s) without a PyTorch row")
    line = " ".join(summary).replace(" ;", ";")
    if a.summary:
        with open(a.summary, "w", encoding="utf-8") as f:
            f.write(line + "\n")
    else:
        print()
        print(line)
    print()


if __name__ == "__main__":
    main()
