"""Special files in every path argument of every command: devices, a FIFO without a writer, a socket, symbolic
links (to a loop, to a device, to /proc/self/fd/1, dangling), a folder, a missing parent, /proc/self/fd/1.

An output that is not a regular file must be refused with one line and left as it was; an input that is not a
regular file must be refused, except a text the user names directly (`train --corpus`, `import --corpus`,
`eval --text`, `analyze --text`, `sample --prefix-file`, `plot METRICS`): `rnn` reads those as `cat` does, from a
pipe or FIFO too, so a FIFO without a writer waits for one (an "expected hang", ended by opening a writer).

The real /dev/null and /dev/zero are used only where this process cannot replace them (not root: /dev is not
writable); as root the devices are private nodes made with mknod in a temporary folder, and a device case is
skipped when mknod is not permitted.
"""

import os
import socket
import stat
import threading

# kind -> what the path is (the description saved with a failing case).
KINDS = {
    "null": "a character device like /dev/null",
    "zero": "a character device like /dev/zero",
    "fifo": "a FIFO with no writer",
    "fifo-writer": "a FIFO whose writer is already waiting to write a text",
    "socket": "a listening Unix socket",
    "loop": "a symbolic link in a loop",
    "dir": "a folder",
    "noparent": "a path whose parent folder does not exist",
    "stdout": "/proc/self/fd/1",
    "link-stdout": "a symbolic link to /proc/self/fd/1",
    "link-null": "a symbolic link to a character device",
    "dangling": "a dangling symbolic link",
}


def devices(root):
    """(null, zero) paths safe to give as outputs: the real ones when /dev is not writable by us, else private
    nodes (mknod) in `root`, else None."""
    if not os.access("/dev", os.W_OK) and os.path.exists("/dev/null"):
        return "/dev/null", "/dev/zero"
    try:
        null, zero = os.path.join(root, "null-node"), os.path.join(root, "zero-node")
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(zero, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        return null, zero
    except OSError:
        return None, None


class WaitingWriter:
    """A thread that opens a FIFO for writing (waiting there for a reader), writes `text` and closes it: the writer
    of `cat text > fifo &` started before the command. `close()` frees it if no reader ever came."""

    def __init__(self, path, text):
        self.path, self.text = path, text
        self.thread = threading.Thread(target=self.write, daemon=True)
        self.thread.start()

    def write(self):
        try:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.write(fd, self.text)
            finally:
                os.close(fd)
        except OSError:
            pass

    def close(self):
        if self.thread.is_alive():
            try:  # a reader that leaves at once lets the blocked open return
                os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            except OSError:
                pass
        self.thread.join(5)


def make(kind, folder, nodes, text=b""):
    """Creates a special path of `kind` in `folder` (a fresh folder per case); returns (path, keep-alive object)."""
    path = os.path.join(folder, "special")
    null, zero = nodes
    if kind in ("null", "zero"):
        return (null if kind == "null" else zero), None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "fifo-writer":
        os.mkfifo(path)
        return path, WaitingWriter(path, text)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        return path, s
    elif kind == "loop":
        os.symlink(path + "2", path)
        os.symlink(path, path + "2")
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "noparent":
        return os.path.join(folder, "missing", "deeper", "special"), None
    elif kind == "stdout":
        return "/proc/self/fd/1", None
    elif kind == "link-stdout":
        os.symlink("/proc/self/fd/1", path)
    elif kind == "link-null":
        os.symlink(null, path)
    elif kind == "dangling":
        os.symlink(os.path.join(folder, "nowhere"), path)
    return path, None


def arguments(files):
    """Every path argument of every command: (label, role, build(path, folder) -> args, stream).

    role: "in" (an input), "out" (an output file), "outdir" (an output folder, which may be made, with its missing
    parents, or exist as a folder). `files` holds valid inputs: checkpoint, onnx, metrics, corpus.
    """
    tiny = ["--hidden", "8", "--epochs", "1", "--batch", "2", "--steps", "5", "--max-tokens", "300", "--threads",
            "1", "--sample-every", "0"]
    ck, onnx, metrics, corpus = files["checkpoint"], files["onnx"], files["metrics"], files["corpus"]
    return [
        ("train --corpus", "in", lambda p, d: ["train", "--corpus", p] + tiny + ["--output", d + "/run"], True),
        ("train --resume", "in", lambda p, d: ["train", "--resume", p, "--threads", "1"], False),
        ("train --init-from", "in", lambda p, d: ["train", "--init-from", p] + tiny + ["--output", d + "/run"],
         False),
        ("train --output", "outdir", lambda p, d: ["train", "--corpus", corpus] + tiny + ["--output", p], False),
        ("sample --checkpoint", "in", lambda p, d: ["sample", "--checkpoint", p, "--length", "5"], False),
        ("sample --prefix-file", "in", lambda p, d: ["sample", "--checkpoint", ck, "--prefix-file", p, "--length",
                                                      "5"], True),
        ("eval --checkpoint", "in", lambda p, d: ["eval", "--checkpoint", p, "--max-chars", "300"], False),
        ("eval --text", "in", lambda p, d: ["eval", "--checkpoint", ck, "--text", p, "--max-chars", "300"], True),
        ("eval --corpus", "in", lambda p, d: ["eval", "--checkpoint", ck, "--corpus", p, "--max-chars", "300"], False),
        ("export CHECKPOINT", "in", lambda p, d: ["export", p, d + "/out.onnx"], False),
        ("export OUTPUT", "out", lambda p, d: ["export", ck, p], False),
        ("import MODEL", "in", lambda p, d: ["import", p, d + "/out.safetensors"], False),
        ("import OUTPUT", "out", lambda p, d: ["import", onnx, p], False),
        ("import --vocabulary-from", "in", lambda p, d: ["import", onnx, d + "/out.safetensors",
                                                          "--vocabulary-from", p], False),
        ("import --corpus", "in", lambda p, d: ["import", onnx, d + "/out.safetensors", "--corpus", p], True),
        ("plot METRICS", "in", lambda p, d: ["plot", p, "--output", d + "/plot.svg"], True),
        ("plot --output", "out", lambda p, d: ["plot", metrics, "--output", p], False),
        ("analyze --checkpoint", "in", lambda p, d: ["analyze", "--checkpoint", p, "--steps", "10", "--output",
                                                      d + "/an"], False),
        ("analyze --text", "in", lambda p, d: ["analyze", "--text", p, "--hidden", "8", "--steps", "10", "--output",
                                                d + "/an"], True),
        ("analyze --corpus", "in", lambda p, d: ["analyze", "--corpus", p, "--hidden", "8", "--steps", "10",
                                                  "--output", d + "/an"], False),
        ("analyze --also", "in", lambda p, d: ["analyze", "--demo", "--also", p, "--steps", "10", "--output",
                                                d + "/an"], False),
        ("analyze --output", "outdir", lambda p, d: ["analyze", "--hidden", "8", "--steps", "10", "--output", p],
         False),
        ("compare-bptt --output", "outdir", lambda p, d: ["compare-bptt", "--hidden", "4", "--epochs", "1",
                                                          "--threads", "1", "--output", p], False),
    ]


def expectation(role, kind, stream):
    """(exit 0 allowed, hang expected) for a path of `kind` in an argument of `role`."""
    if role == "outdir":
        return kind in ("dir", "noparent"), False
    if role == "out":
        return False, False
    # Inputs: /proc/self/fd/1 is the case's captured output, a regular file, and a text read as a stream may come from
    # a FIFO whose writer is waiting (it must be read, never waited for); anything else special is refused.
    return kind in ("stdout", "link-stdout") or (stream and kind == "fifo-writer"), stream and kind == "fifo"


def written(role, path, folder):
    """Checkpoints a case may write (each must load again after exit 0)."""
    out = [os.path.join(folder, "run", "model.safetensors"), os.path.join(folder, "out.safetensors")]
    if role == "outdir":
        out.append(os.path.join(path, "model.safetensors"))
    return out
