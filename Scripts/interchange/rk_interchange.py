"""Shared pieces of the PyTorch <-> RecurrentKit checkpoint interchange.

- `CharModel`: the PyTorch module whose `state_dict` names RecurrentKit's checkpoints use
  (`embedding` (optional) -> `rnn` -> `output`), time-major, one-hot input when there is no embedding.
  Optional model fields `"bias": false` (recurrent layers without biases) and `"bidirectional": true`
  (D = 2 directions: `*_reverse` tensors, head `nn.Linear(2H, V)`, states (2L, B, H)), and `"projectionSize": P`
  (LSTM `proj_size`: `weight_hr_l{k}` (P, H), h and the head's input of width P).
- Text handling copied from RecurrentKit: d2l normalisation, d2l / raw vocabularies, encoding.
- `load_checkpoint` / `save_checkpoint`: our safetensors layout (`__metadata__` keys `format`, `model`,
  `vocabulary`, optionally `training`; tensors `_trainer.*` hold training state and are dropped for torch).

Only the standard library and torch are needed.
"""

import json
import math
import os
import re

import rk_safetensors

FORMAT = "recurrentkit.checkpoint.v1"  # what this script writes (RecurrentKit reads v1 to v3)
READABLE_FORMATS = ("recurrentkit.checkpoint.v1", "recurrentkit.checkpoint.v2", "recurrentkit.checkpoint.v3")
TRAINER_PREFIX = "_trainer."
CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")  # rnn_linear exists in RecurrentKit but not in PyTorch
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TIME_MACHINE_CANDIDATES = (
    os.path.join(REPO_ROOT, "Sources", "_RecurrentKitCorpora", "corpora", "timemachine.txt"),
    "/work/shared/data/timemachine.txt",
)
# d2l 0.17's vocabulary of The Time Machine (see /work/shared/data/README.md); recomputed and checked.
TIME_MACHINE_D2L_TOKENS = ["<unk>"] + list(" etainoshrdlmucfwgypbvkxzjq")


class InterchangeError(Exception):
    """A checkpoint or argument problem, reported as one line."""


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

def d2l_lines(text):
    """d2l 0.17 per-line clean-up; lines split like Python's readlines() with universal newlines."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()  # no empty line after a final terminator
    return [re.sub(r"[^A-Za-z]+", " ", line).strip().lower() for line in lines]


def d2l_normalize(text):
    """d2l 0.17's prepared text: the cleaned lines joined with no separator."""
    return "".join(d2l_lines(text))


def d2l_vocabulary(prepared):
    """`<unk>`, then distinct characters by descending count, ties in first-seen order (d2l's Vocab)."""
    counts, first = {}, {}
    for i, ch in enumerate(prepared):
        counts[ch] = counts.get(ch, 0) + 1
        first.setdefault(ch, i)
    ordered = sorted(counts, key=lambda ch: (-counts[ch], first[ch]))
    return {"mode": "d2l", "tokens": ["<unk>"] + ordered}


def raw_vocabulary(text):
    """char-rnn / nanoGPT: distinct code points sorted by value."""
    return {"mode": "raw", "tokens": sorted(set(text))}


def time_machine_text():
    for path in TIME_MACHINE_CANDIDATES:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    raise InterchangeError("The Time Machine text not found (looked in %s)" % ", ".join(TIME_MACHINE_CANDIDATES))


def time_machine_vocabulary():
    vocab = d2l_vocabulary(d2l_normalize(time_machine_text()))
    if vocab["tokens"] != TIME_MACHINE_D2L_TOKENS:
        raise InterchangeError("unexpected d2l vocabulary of The Time Machine: %r" % vocab["tokens"])
    return vocab


def validate_vocabulary(vocab):
    if not isinstance(vocab, dict) or vocab.get("mode") not in ("d2l", "raw") or not isinstance(vocab.get("tokens"), list):
        raise InterchangeError('vocabulary must be {"mode": "d2l"|"raw", "tokens": [...]}')
    tokens = vocab["tokens"]
    if not tokens:
        raise InterchangeError("vocabulary has no tokens")
    seen = set()
    for i, tok in enumerate(tokens):
        if vocab["mode"] == "d2l" and i == 0:
            if tok != "<unk>":
                raise InterchangeError('d2l vocabulary token 0 is %r, must be "<unk>"' % tok)
            continue
        if not isinstance(tok, str) or len(tok) != 1:
            raise InterchangeError("vocabulary token %d (%r) must be exactly one Unicode code point" % (i, tok))
        if tok in seen:
            raise InterchangeError("vocabulary token %d (%r) appears twice" % (i, tok))
        seen.add(tok)


def encode(vocab, text):
    """Token indices as RecurrentKit's `Vocabulary.encode`: one per code point; d2l: unknown -> 0; raw: error."""
    index = {tok: i for i, tok in enumerate(vocab["tokens"]) if not (vocab["mode"] == "d2l" and i == 0)}
    out = []
    for pos, ch in enumerate(text):
        if ch in index:
            out.append(index[ch])
        elif vocab["mode"] == "d2l":
            out.append(0)
        else:
            raise InterchangeError("character U+%04X %r at position %d is not in the vocabulary (raw mode has no <unk>)"
                                   % (ord(ch), ch, pos))
    return out


def prepare_and_encode(vocab, text, already_prepared=False):
    """What `rnn eval` does: d2l-normalise in d2l mode (unless `already_prepared`), then encode."""
    if vocab["mode"] == "d2l" and not already_prepared:
        text = d2l_normalize(text)
    return text, encode(vocab, text)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

def model_bias(cfg):
    """Whether the recurrent layers have biases (`"bias"`, default true)."""
    return cfg.get("bias", True) is not False


def model_bidirectional(cfg):
    """Whether the recurrent layers run in both directions (`"bidirectional"`, default false)."""
    return cfg.get("bidirectional", False) is True


def model_projection(cfg):
    """The LSTM projection width (`"projectionSize"`, default 0 = none)."""
    return cfg.get("projectionSize", 0)


def describe_model(cfg):
    """E.g. "lstm model with 2 layer(s), bidirectional, without recurrent biases" (for messages)."""
    text = "%s model with %d layer(s)" % (cfg["cell"], cfg["numLayers"])
    if model_bidirectional(cfg):
        text += ", bidirectional"
    if not model_bias(cfg):
        text += ", without recurrent biases"
    if model_projection(cfg):
        text += ", projection %d" % model_projection(cfg)
    return text


def canonical_model_json(cfg):
    """The `model` metadata as RecurrentKit writes it (sorted keys, compact; embeddingSize only when set,
    `"bias":false` / `"bidirectional":true` only when not the default)."""
    d = {"cell": cfg["cell"], "dropout": cfg.get("dropout", 0), "hiddenSize": cfg["hiddenSize"],
         "numLayers": cfg["numLayers"], "vocabularySize": cfg["vocabularySize"]}
    if isinstance(d["dropout"], float) and d["dropout"].is_integer():
        d["dropout"] = int(d["dropout"])
    if cfg.get("embeddingSize") is not None:
        d["embeddingSize"] = cfg["embeddingSize"]
    if cfg.get("bias", True) is False:
        d["bias"] = False
    if cfg.get("bidirectional", False) is True:
        d["bidirectional"] = True
    if cfg.get("projectionSize", 0):
        d["projectionSize"] = cfg["projectionSize"]
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def validate_model_config(cfg):
    if not isinstance(cfg, dict):
        raise InterchangeError("model configuration is not a JSON object")
    for key in ("vocabularySize", "cell", "hiddenSize", "numLayers"):
        if key not in cfg:
            raise InterchangeError("model configuration: missing field %s" % key)
    if cfg["cell"] == "rnn_linear":
        raise InterchangeError("cell rnn_linear (RNN without nonlinearity) has no PyTorch equivalent: "
                               "nn.RNN supports only nonlinearity='tanh' or 'relu'")
    if cfg["cell"] not in CELLS:
        raise InterchangeError("model configuration: unknown cell %r (expected one of %s)" % (cfg["cell"], ", ".join(CELLS)))

    def positive_int(key, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InterchangeError("model configuration: %s must be a positive integer, got %r" % (key, value))

    for key in ("vocabularySize", "hiddenSize", "numLayers"):
        positive_int(key, cfg[key])
    if cfg.get("embeddingSize") is not None:
        positive_int("embeddingSize", cfg["embeddingSize"])
    dropout = cfg.get("dropout", 0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (0 <= dropout < 1):
        raise InterchangeError("model configuration: dropout must be in [0, 1), got %r" % (dropout,))
    for key in ("bias", "bidirectional"):
        if key in cfg and not isinstance(cfg[key], bool):
            raise InterchangeError("model configuration: %s must be true or false, got %s"
                                   % (key, json.dumps(cfg[key], ensure_ascii=False)))
    if "projectionSize" in cfg:
        P = cfg["projectionSize"]
        if not isinstance(P, int) or isinstance(P, bool) or not (0 <= P < cfg["hiddenSize"]):
            raise InterchangeError("model configuration: projectionSize must be an integer in [0, hiddenSize), got %s"
                                   % json.dumps(P, ensure_ascii=False))
        if P and cfg["cell"] != "lstm":
            raise InterchangeError("model configuration: projectionSize (proj_size) is defined for the LSTM only")


def build_model(cfg):
    import torch
    from torch import nn
    import torch.nn.functional as F

    validate_model_config(cfg)
    V, H, L = cfg["vocabularySize"], cfg["hiddenSize"], cfg["numLayers"]
    E = cfg.get("embeddingSize")
    dropout = float(cfg.get("dropout", 0))
    bias, bidirectional, P = model_bias(cfg), model_bidirectional(cfg), model_projection(cfg)
    D = 2 if bidirectional else 1

    class CharModel(nn.Module):
        """embedding (optional) / one-hot -> nn.RNN|GRU|LSTM (time-major; bias=, bidirectional= from the
        configuration) -> nn.Linear(D*H, V). States are (D*L, B, H)."""

        def __init__(self):
            super().__init__()
            self.vocabulary_size = V
            self.embedding = nn.Embedding(V, E) if E else None
            inputs = E if E else V
            kw = dict(num_layers=L, dropout=dropout if L > 1 else 0.0, batch_first=False, bias=bias,
                      bidirectional=bidirectional)
            if cfg["cell"] in ("rnn_tanh", "rnn_relu"):
                self.rnn = nn.RNN(inputs, H, nonlinearity=cfg["cell"][4:], **kw)
            elif cfg["cell"] == "gru":
                self.rnn = nn.GRU(inputs, H, **kw)
            else:
                self.rnn = nn.LSTM(inputs, H, proj_size=P, **kw)
            self.output = nn.Linear(D * (P or H), V)

        def forward(self, tokens, state=None):
            """tokens (T, B) int64 -> logits (T, B, V), final state."""
            x = self.embedding(tokens) if self.embedding is not None else F.one_hot(tokens, V).to(torch.float32)
            y, state = self.rnn(x, state)
            return self.output(y), state

    return CharModel()


def evaluate(model, tokens):
    """Logits (T, V) of the whole sequence in one row and one chunk, and the mean CE (nats) of predicting
    tokens[1:] from the logits of steps 0..T-2 (float32, like `rnn eval --batch 1 --steps >= T`).
    For a bidirectional model the logits are well defined but each step has seen the whole sequence, so the
    CE is not a next-token prediction score (`rnn eval` refuses such models, d2l 9.4)."""
    import torch
    import torch.nn.functional as F
    model.eval()
    with torch.no_grad():
        x = torch.tensor(tokens, dtype=torch.int64).reshape(-1, 1)
        logits, _ = model(x)
        logits = logits[:, 0, :]
        ce = float(F.cross_entropy(logits[:-1], x[1:, 0])) if len(tokens) >= 2 else float("nan")
    return logits, ce


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def load_checkpoint(path):
    """Reads our checkpoint into a torch model (strict load). Returns (model, cfg, vocab, metadata, dropped names)."""
    import torch
    try:
        tensors, metadata = rk_safetensors.load_torch(path)
    except OSError as e:
        raise InterchangeError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except rk_safetensors.SafetensorsError as e:
        raise InterchangeError(str(e)) from None
    fmt = metadata.get("format")
    if fmt is not None and fmt not in READABLE_FORMATS:
        raise InterchangeError("__metadata__ format is %r, expected one of %r" % (fmt, READABLE_FORMATS))
    if "model" not in metadata:
        raise InterchangeError('no model configuration in __metadata__["model"]')
    if "vocabulary" not in metadata:
        raise InterchangeError('no vocabulary in __metadata__["vocabulary"]')
    try:
        cfg = json.loads(metadata["model"])
    except ValueError:
        raise InterchangeError("model configuration is not valid JSON") from None
    try:
        vocab = json.loads(metadata["vocabulary"])
    except ValueError:
        raise InterchangeError("vocabulary is not valid JSON") from None
    validate_model_config(cfg)
    validate_vocabulary(vocab)
    if len(vocab["tokens"]) != cfg["vocabularySize"]:
        raise InterchangeError("vocabulary has %d tokens but the model expects %d" % (len(vocab["tokens"]), cfg["vocabularySize"]))
    dropped = sorted(n for n in tensors if n.startswith(TRAINER_PREFIX))
    weights = {n: t for n, t in tensors.items() if not n.startswith(TRAINER_PREFIX)}
    for name, t in weights.items():
        if not bool(torch.isfinite(t).all()):
            raise InterchangeError("tensor %s holds NaN or infinite values" % name)
    model = build_model(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing:
        raise InterchangeError("tensor %s is missing" % missing[0])
    if extra:
        raise InterchangeError("unexpected tensor %s for a %s" % (extra[0], describe_model(cfg)))
    for name, t in weights.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise InterchangeError("tensor %s has shape %s, expected %s" % (name, list(t.shape), list(expected[name].shape)))
    try:
        model.load_state_dict({n: t.to(torch.float32) for n, t in weights.items()}, strict=True)
    except RuntimeError as e:
        raise InterchangeError("load_state_dict failed: " + " ".join(str(e).split())) from None
    model.eval()
    return model, cfg, vocab, metadata, dropped


def config_from_module(model, dropout=None):
    """The `model` configuration of a PyTorch module with attributes `embedding` (optional nn.Embedding), `rnn`
    (nn.RNN tanh/relu, nn.GRU or nn.LSTM) and `output` (nn.Linear(D*H, V)): cell, sizes, dropout (the module's
    unless given), and `bias` / `bidirectional` / `projectionSize` (proj_size) from `rnn` (stored only when not the default)."""
    from torch import nn
    rnn = getattr(model, "rnn", None)
    output = getattr(model, "output", None)
    embedding = getattr(model, "embedding", None)
    if isinstance(rnn, nn.LSTM):
        cell = "lstm"
    elif isinstance(rnn, nn.GRU):
        cell = "gru"
    elif isinstance(rnn, nn.RNN):
        cell = "rnn_" + rnn.nonlinearity
    else:
        raise InterchangeError("the module's `rnn` must be an nn.RNN, nn.GRU or nn.LSTM, got %s" % type(rnn).__name__)
    if not isinstance(output, nn.Linear):
        raise InterchangeError("the module's `output` must be an nn.Linear, got %s" % type(output).__name__)
    if embedding is not None and not isinstance(embedding, nn.Embedding):
        raise InterchangeError("the module's `embedding` must be an nn.Embedding or None, got %s" % type(embedding).__name__)
    if rnn.batch_first:
        raise InterchangeError("the module's `rnn` has batch_first=True; RecurrentKit's layout is time-major")
    cfg = {"cell": cell, "dropout": rnn.dropout if dropout is None else dropout, "hiddenSize": rnn.hidden_size,
           "numLayers": rnn.num_layers, "vocabularySize": output.out_features}
    if embedding is not None:
        cfg["embeddingSize"] = embedding.embedding_dim
    if not rnn.bias:
        cfg["bias"] = False
    if rnn.bidirectional:
        cfg["bidirectional"] = True
    if getattr(rnn, "proj_size", 0):
        cfg["projectionSize"] = rnn.proj_size
    return cfg


def expected_state_shapes(cfg):
    """{name: shape} of `build_model(cfg).state_dict()` (built without touching the global RNG)."""
    import torch
    with torch.random.fork_rng(devices=[]):
        return {n: tuple(t.shape) for n, t in build_model(cfg).state_dict().items()}


def save_checkpoint(path, model, cfg, vocab, training=None):
    """Writes `model.state_dict()` as F32 with our metadata (format, model, vocabulary[, training]).
    `cfg` None: taken from the module (`config_from_module`). The state_dict must have exactly the names and
    shapes of `build_model(cfg)`, so e.g. an `rnn` with bias=False needs `"bias": False` in `cfg`."""
    if cfg is None:
        cfg = config_from_module(model)
    validate_model_config(cfg)
    validate_vocabulary(vocab)
    if len(vocab["tokens"]) != cfg["vocabularySize"]:
        raise InterchangeError("vocabulary has %d tokens, model has V=%d" % (len(vocab["tokens"]), cfg["vocabularySize"]))
    state = {n: t for n, t in model.state_dict().items()}
    expected = expected_state_shapes(cfg)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    hint = " (does the configuration's bias/bidirectional match the module's rnn?)"
    if missing:
        raise InterchangeError("the module has no tensor %s, which a %s needs%s" % (missing[0], describe_model(cfg), hint))
    if extra:
        raise InterchangeError("the module's tensor %s does not belong to a %s%s" % (extra[0], describe_model(cfg), hint))
    for n, t in state.items():
        if tuple(t.shape) != expected[n]:
            raise InterchangeError("the module's tensor %s has shape %s, the configuration needs %s"
                                   % (n, list(t.shape), list(expected[n])))
    for n, t in state.items():
        if not bool(t.isfinite().all()):
            raise InterchangeError("refusing to save tensor %s with NaN or infinite values" % n)
    metadata = {
        "format": FORMAT,
        "model": canonical_model_json(cfg),
        "vocabulary": json.dumps({"mode": vocab["mode"], "tokens": vocab["tokens"]}, sort_keys=True,
                                 separators=(",", ":"), ensure_ascii=False),
    }
    if training is not None:
        metadata["training"] = training
    rk_safetensors.save_torch(path, state, metadata, dtype="F32")


def perplexity(ce):
    return math.exp(ce) if math.isfinite(ce) else float("nan")
