"""Hostile corpora: empty, byte-order marks, invalid UTF-8, NUL bytes, noncharacters, lone combining marks, a huge
single line, one repeated character, line separators, emoji sequences, a vocabulary of every BMP scalar, and a words
vocabulary that `--min-frequency` maps entirely to <unk>. The CI run uses a shorter huge line and one BMP scalar in 7.

`corpora(rng, extra, long_run)` returns [(name, bytes)]: the fixed list, then `extra` random mixtures of the same
classes.
"""

WORDS = "the time traveller said that it was a very odd thing to see and we all laughed at him".split()


def text(rng, words=600):
    """Plain English-like text (enough for a few minibatches of the tiny model)."""
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "\n"


def fixed(rng, long_run):
    base = text(rng)
    bom = "\ufeff"
    every_bmp = "".join(chr(c) for c in range(0x20, 0x10000, 1 if long_run else 7) if not 0xD800 <= c < 0xE000)
    return [
        ("empty", b""),
        ("bom only", bom.encode()),
        ("bom at start", (bom + "the time traveller " * 300).encode()),
        ("bom at start of d2l text", (bom + base).encode()),
        ("bom in the middle", (base + bom + base).encode()),
        ("bom on every line", "".join(bom + line + "\n" for line in base.split(" a ")).encode()),
        ("two boms", (bom + bom + base).encode()),
        ("utf-16 le bom", b"\xff\xfe" + base.encode("utf-16-le")),
        ("invalid byte ff", base.encode() + b"\xff"),
        ("truncated sequence", base.encode() + b"\xc3"),
        ("encoded surrogate", b"ab" + b"\xed\xa0\x80" + base.encode()),
        ("overlong slash", b"\xc0\xaf" + base.encode()),
        ("beyond u+10ffff", b"\xf4\x90\x80\x80" + base.encode()),
        ("lone continuation", b"\x80" + base.encode()),
        ("nul bytes", base.replace(" ", "\0 ").encode()),
        ("only nul", b"\0" * 3000),
        ("noncharacters", "".join(w + rng.choice(["\ufffe", "\uffff", "\ufdd0", "\U0001fffe", "\U0010ffff"])
                                  for w in base.split(" ")).encode()),
        ("lone combining marks", ("\u0301" + base.replace(" ", " \u0301")).encode()),
        ("only combining marks", ("\u0301\u0308" * 2000).encode()),
        ("decomposed accents", base.replace("e", "e\u0301").encode()),
        ("huge single line", ("abc def " * (700_000 if long_run else 250_000)).encode()),
        ("one repeated letter", b"a" * 5000),
        ("one repeated space", b" " * 5000),
        ("only newlines", b"\n" * 5000),
        ("no letters", ("!?., 123 " * 500).encode()),
        ("crlf", base.replace(" a ", "\r\n").encode()),
        ("lone cr", base.replace(" a ", "\r").encode()),
        ("line separators", base.replace(" a ", "\u2028").replace(" the ", "\u2029").encode()),
        ("emoji zwj", ("\U0001F469\u200D\U0001F469\u200D\U0001F467 \U0001F1EB\U0001F1F7 " * 400).encode()),
        ("hangul jamo", ("\u1100\u1161\u11a8 " * 1000).encode()),
        ("every bmp scalar" + ("" if long_run else " (one in 7)"), every_bmp.encode("utf-8")),
        ("control characters", "".join(chr(rng.randrange(1, 32)) + w for w in base.split(" ")).encode()),
        ("too short", b"the time"),
        ("one character", b"a"),
    ]


def random_corpus(rng):
    """A random mixture of the classes above (long runs)."""
    pieces = [text(rng, rng.choice([5, 50, 500]))]
    for _ in range(rng.randrange(1, 6)):
        roll = rng.randrange(8)
        if roll == 0:
            pieces.append(chr(rng.choice([0xFEFF, 0xFFFE, 0xFFFF, 0xFDD0, 0x0301, 0x200B, 0x2028, 0x0, 0x10FFFF])))
        elif roll == 1:
            pieces.append(chr(rng.randrange(0x20, 0xD800)) * rng.choice([1, 10, 1000]))
        elif roll == 2:
            pieces.append("".join(chr(rng.randrange(0x300, 0x370)) for _ in range(rng.choice([1, 50]))))
        elif roll == 3:
            pieces.append(text(rng, rng.choice([1, 100])).upper())
        elif roll == 4:
            pieces.append(chr(rng.randrange(0x10000, 0x110000)))
        else:
            pieces.append(text(rng, rng.choice([1, 100])))
    data = "".join(rng.sample(pieces, len(pieces))).encode("utf-8")
    if rng.random() < 0.15:
        data = data[:rng.randrange(len(data) + 1)]  # may cut a sequence in two
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    return data


def corpora(rng, extra, long_run):
    return fixed(rng, long_run) + [(f"random {i}", random_corpus(rng)) for i in range(extra)]


def commands(path, checkpoint, onnx, folder):
    """The commands each corpus goes through: (label, args, checkpoints written)."""
    tiny = ["--hidden", "8", "--epochs", "1", "--batch", "2", "--steps", "5", "--max-tokens", "3000", "--threads",
            "1", "--sample-every", "0", "--embedding", "4"]
    out = []
    for mode in ("d2l", "raw", "words"):
        run = f"{folder}/{mode}"
        out.append((f"train {mode}", ["train", "--corpus", path, "--text-mode", mode, "--output", run] + tiny,
                    [f"{run}/model.safetensors", f"{run}/best.safetensors"]))
    run = f"{folder}/unk"
    out.append(("train words, every word <unk>", ["train", "--corpus", path, "--text-mode", "words",
                                                  "--min-frequency", "1000000", "--output", run] + tiny,
                [f"{run}/model.safetensors", f"{run}/best.safetensors"]))
    out.append(("eval --text", ["eval", "--checkpoint", checkpoint, "--text", path, "--max-chars", "2000"], []))
    out.append(("sample --prefix-file", ["sample", "--checkpoint", checkpoint, "--prefix-file", path, "--length",
                                         "5"], []))
    out.append(("import --corpus", ["import", onnx, f"{folder}/imported.safetensors", "--corpus", path,
                                    "--text-mode", "raw"], [f"{folder}/imported.safetensors"]))
    return out
