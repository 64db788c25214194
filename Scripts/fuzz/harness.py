"""Runs one fuzz case through the `rnn` binary and classifies what happened (standard library only).

A case is one command line. Its outcome is one of:

- ``exit0``: exit status 0 (accepted). Every checkpoint the command wrote must then load again with
  `rnn sample --checkpoint` (else ``data loss``).
- ``refused``: exit status 1 (an error) or 64 (a command-line error), with exactly one line on stderr that starts
  with ``rnn: error:``.
- ``unclear``: a refusal whose stderr is empty or longer than one line.
- ``crash``: killed by a signal, an exit status other than 0, 1 and 64, or a Swift runtime trap on stderr.
- ``hang``: still running at the time limit (killed then). ``expected hang``: the documented case, a FIFO with no
  writer given directly as a text the user names (read as `cat` reads it): the command must still be waiting at the
  time limit and end by itself, without a crash, once a writer opens the FIFO and closes it.

Special files given as paths are checked with `lstat` before and after: one that changed (type, inode, device or
link target) was ``replaced``.
"""

import json
import os
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import time

# The address-space limit of the memory cases (KiB), as `ulimit -v` takes it: 4 GiB.
MEMORY_LIMIT_KIB = 4194304
TRAP_TEXTS = ("Fatal error", "Illegal instruction", "Trace/breakpoint", "Segmentation fault", "Program crashed",
              "Aborted", "Bus error", "Current stack trace")
FAILURES = ("crash", "hang", "unclear", "data loss", "replaced", "accepted")
COLUMNS = ("cases", "exit 0", "refused", "crash", "hang", "expected hang", "unclear", "data loss", "replaced",
           "accepted")


class Result:
    """What one command did: exit status (negative: the signal), output, time, whether it was killed."""

    def __init__(self, args, returncode, stdout, stderr, seconds, timed_out):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr
        self.seconds, self.timed_out, self.waited = seconds, timed_out, False

    def summary(self):
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s"
        if self.waited:
            return f"waited for a writer, then exit {self.returncode} ({self.seconds:.1f} s)"
        lines = self.stderr.strip().splitlines()
        return f"exit {self.returncode}: " + (lines[0][:300] if lines else "(no stderr)")


def run(args, cwd, timeout, memory_limit=False, env=None, fifo=None):
    """Runs `args` (stdin closed, output to files) in its own process group and kills the group at `timeout`.

    With `fifo`, a command still running after 1 s that has the FIFO open for reading gets a writer on it, which
    closes at once: a command that was waiting for a writer, as `cat` does, then ends by itself (within 10 s).
    """
    if memory_limit:
        args = ["bash", "-c", f'ulimit -v {MEMORY_LIMIT_KIB}; exec "$0" "$@"'] + list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        process = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True, env=env)
        timed_out = waited = False
        try:
            process.wait(timeout=1 if fifo is not None else timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        if timed_out and fifo is not None:
            try:  # fails (ENXIO) unless the command has the FIFO open for reading
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                waited = True
            except OSError:
                pass
            try:
                process.wait(timeout=10 if waited else timeout - 1)
                timed_out = False
            except subprocess.TimeoutExpired:
                pass
        if timed_out:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        result = Result(args, process.returncode, out.read(1 << 16).decode("utf-8", "replace"),
                        err.read(1 << 16).decode("utf-8", "replace"), seconds, timed_out)
        result.waited = waited
        return result


def classify(result, hang_expected=False):
    """The outcome of `result` (see the module's documentation)."""
    if result.timed_out:
        return "hang"
    if result.returncode < 0 or result.returncode not in (0, 1, 64):
        return "crash"
    if any(text in result.stderr for text in TRAP_TEXTS):
        return "crash"
    if result.waited:
        return "expected hang" if hang_expected else "hang"
    if result.returncode == 0:
        return "exit0"
    lines = result.stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("rnn: error: "):
        return "unclear"
    return "refused"


def header(path):
    """The JSON header of a safetensors file, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > 100_000_000:
                return None
            return json.loads(f.read(size))
    except (OSError, ValueError, RecursionError, struct.error):
        return None


def prefix_candidates(path):
    """Prefixes `rnn sample` accepts for the checkpoint at `path`: tokens of its vocabulary (printable first)."""
    try:
        vocabulary = json.loads((header(path) or {})["__metadata__"]["vocabulary"])
        tokens = [t for t in vocabulary["tokens"] if isinstance(t, str) and t and t != "<unk>"]
    except (ValueError, KeyError, TypeError, RecursionError):  # a mutant's header may hold anything
        tokens = []
    plain = [t for t in tokens if t.isprintable() and "\ufeff" not in t and not t.isspace()]
    other = [t for t in tokens if t not in plain]
    return (plain[:1] + other[:2]) or ["t"]


class Fuzzer:
    """Runs cases, keeps the counts per category and saves what failed under `out` for reproduction."""

    def __init__(self, rnn, out, seed, verbose=False):
        self.rnn, self.out, self.seed, self.verbose = rnn, out, seed, verbose
        self.counts = {}
        self.seconds = {}
        self.failures = []
        self.notes = []

    def tally(self, category, column):
        row = self.counts.setdefault(category, {c: 0 for c in COLUMNS})
        row[column] += 1

    def loads(self, path, cwd):
        """Whether the checkpoint at `path` loads with `rnn sample` (any prefix taken from its vocabulary)."""
        last = None
        for prefix in prefix_candidates(path):
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
                f.write(prefix)
            try:
                result = run([self.rnn, "sample", "--checkpoint", path, "--length", "3", "--prefix-file", f.name],
                             cwd, 30)
            finally:
                os.unlink(f.name)
            if result.returncode == 0 and classify(result) == "exit0":
                return True, result
            last = result
            if "prefix" not in result.stderr:
                break
        return False, last

    def case(self, category, index, args, cwd, timeout=20, memory_limit=False, hang_expected=False,
             written=(), watched=(), expect_refusal=False, expect_success=False, keep=(), describe="", fifo=None,
             must_name=None, resumes=False):
        """Runs one case and records its outcome.

        - written: checkpoints the command may write; each that exists after exit 0 must load again (data loss).
        - watched: special paths that must be unchanged afterwards (replaced).
        - expect_refusal: exit 0 is a failure too ("accepted", e.g. a special file given as the output).
        - expect_success: a refusal is data loss (reading back a file that a command wrote with exit 0).
        - must_name: a refusal must name this (the tensor a mutant made impossible), else it is "unclear".
        - resumes: a written model.safetensors must also resume (`rnn train --resume`), not only load.
        - keep: files to save with a failing case (the mutant), besides the command line and its output.
        """
        before = {p: snapshot(p) for p in watched}
        before = {p: s for p, s in before.items() if s is not None}  # a path made by the case is not replaced
        start = time.monotonic()
        result = run(args, cwd, timeout, memory_limit, fifo=fifo)
        outcome = classify(result, hang_expected)
        column = {"exit0": "exit 0"}.get(outcome, outcome)
        self.tally(category, "cases")
        self.tally(category, column)
        problems = []
        if outcome in ("crash", "hang", "unclear"):
            problems.append(outcome)
        if outcome == "exit0" and expect_refusal:
            self.tally(category, "accepted")
            problems.append("accepted")
        if outcome == "refused" and must_name and must_name not in result.stderr:
            self.tally(category, "unclear")
            problems.append(f"the error does not name {must_name}")
        if outcome == "refused" and expect_success:
            self.tally(category, "data loss")
            problems.append("data loss: a file written with exit 0 is refused")
        for p in before:
            if snapshot(p) != before[p]:
                self.tally(category, "replaced")
                problems.append(f"replaced {p}")
        checks = []
        if outcome == "exit0":
            for p in written:
                if os.path.isfile(p) and not os.path.islink(p):
                    ok, check = self.loads(p, cwd)
                    checks.append((p, check))
                    if ok and resumes and p.endswith("/model.safetensors"):
                        check = run([self.rnn, "train", "--resume", p, "--threads", "1"], cwd, 60)
                        ok = classify(check) == "exit0"
                        if not ok:
                            problems.append(f"data loss: {p} loads but does not resume ({check.summary()})")
                    elif not ok:
                        problems.append(f"data loss: {p} does not load ({check.summary() if check else ''})")
                    if not ok:
                        self.tally(category, "data loss")
        if self.verbose:
            print(f"  {category} #{index} {outcome} {result.seconds:.2f}s [{describe[:160]}] "
                  f"{' '.join(map(shlex.quote, args[1:]))[:160]} -> {result.summary()}", flush=True)
        if problems:
            self.save(category, index, args, cwd, result, problems, list(keep) + [p for p, _ in checks], describe)
        self.seconds[category] = self.seconds.get(category, 0) + time.monotonic() - start
        return outcome, result

    def save(self, category, index, args, cwd, result, problems, keep, describe):
        folder = os.path.join(self.out, "".join(c if c.isalnum() else "-" for c in category).strip("-"), str(index))
        os.makedirs(folder, exist_ok=True)
        for p in keep:
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < 256 << 20:
                shutil.copy(p, os.path.join(folder, os.path.basename(p)))
        prefix = f"ulimit -v {MEMORY_LIMIT_KIB}; " if args[0] == "bash" else ""
        shown = args[4:] if args[0] == "bash" else args
        with open(os.path.join(folder, "case.txt"), "w", encoding="utf-8") as f:
            f.write(f"category: {category}\nindex: {index}\nseed: {self.seed}\nproblems: {'; '.join(problems)}\n")
            f.write(f"what: {describe}\ncwd: {cwd}\ncommand: {prefix}{' '.join(map(shlex.quote, shown))}\n")
            f.write(f"outcome: {result.summary()} ({result.seconds:.2f} s)\n--- stderr\n{result.stderr}\n")
            f.write(f"--- stdout (start)\n{result.stdout[:4000]}\n")
        self.failures.append((category, index, problems, describe))
        print(f"FAIL {category} #{index}: {'; '.join(problems)} [{describe}] -> {result.summary()}", flush=True)

    def table(self):
        """The counts as a markdown table (columns that are zero everywhere for the failure kinds still shown)."""
        columns = [c for c in COLUMNS if c in ("cases", "exit 0", "refused", "crash", "hang", "data loss", "replaced")
                   or any(row[c] for row in self.counts.values())]
        lines = ["| category | " + " | ".join(columns) + " | seconds |", "|---|" + "---:|" * (len(columns) + 1)]
        total = {c: 0 for c in COLUMNS}
        for category, row in self.counts.items():
            lines.append(f"| {category} | " + " | ".join(str(row[c]) for c in columns) +
                         f" | {self.seconds.get(category, 0):.0f} |")
            for c in COLUMNS:
                total[c] += row[c]
        lines.append("| **total** | " + " | ".join(f"**{total[c]}**" for c in columns) +
                     f" | **{sum(self.seconds.values()):.0f}** |")
        return "\n".join(lines)


def snapshot(path):
    """What identifies the file at `path` without following a final link: type, inode, device, link target."""
    try:
        s = os.lstat(path)
    except FileNotFoundError:
        return None
    target = os.readlink(path) if stat.S_ISLNK(s.st_mode) else None
    return (stat.S_IFMT(s.st_mode), s.st_ino, s.st_dev, s.st_rdev, target)
