#!/usr/bin/env bash
# Checks RecurrentKit's documentation. Fails (non-zero exit) when
#   (a) the DocC catalog (Sources/RecurrentKit/Documentation.docc) and the `///` comments do not build
#       without warnings (unresolved symbol links, parameters documented that do not exist, ...), or
#   (b) a public or open symbol of the RecurrentKit module has no `///` doc comment, or
#   (c) a DocC article (Sources/*/Documentation.docc/*.md) or README.md names in code voice a type or function of
#       Sources/ that is not public ("docs cite only public symbols": internal names drift).
#
# Usage: Scripts/check-docs.sh            (from anywhere; runs at the package root)
#        SCRATCH=/path Scripts/check-docs.sh   to use another build folder (default .build-docs, kept apart from
#                                              .build so it never contends for the lock of a normal build)
#
# Rule for (b). A symbol counts as documented when the symbol graph gives it a doc comment written in this
# module (the graph is dumped with --skip-inherited-docs, so a witness does not borrow the text of the protocol
# requirement it implements). These are excluded, because they have no source of their own to document:
#   1. compiler-synthesized members: symbols without a source location (the implicit `init(rawValue:)` of a
#      raw-value enum, the implicit `init(from:)`/`encode(to:)` of a Codable type, `==`/`hash(into:)` of an
#      Equatable/Hashable type), and identifiers containing "::SYNTHESIZED::" (default implementations
#      inherited from protocol extensions; --skip-synthesized-members already drops most of them);
#   2. members whose name is a requirement of a standard-library protocol listed in STDLIB_WITNESSES below
#      (==, hash(into:), init(from:), encode(to:), description, ...): their meaning is fixed by the protocol.
#      Only type members are excluded this way, never top-level functions.
# Everything else that is public or open, including members of extensions on Float and Double (the
# RecurrentKit@Swift symbol graph), must have its own `///` comment.
#
# Rule for (c). The Swift files under Sources/ are scanned (comments and string literals skipped) for the
# declarations of types, functions and properties and whether each is public: written `public`/`open`, or declared
# without an access modifier inside a public protocol or a `public extension`. Code voice is every `single` or
# ``double`` backtick span and every fenced block of an article; of README.md, the spans and the ```swift blocks
# only (its other blocks are shell commands and output). In code voice it is an error to write
#   1. a CamelCase type name declared only without public (LayerCache, TimeSpans.Span), alone or as Type.member or
#      Type/member (`LayerCache.gates`, ``LayerCache/hidden``), matched as a whole identifier;
#   2. PublicType.member or PublicType/member when the type (with its extensions) declares that member only without
#      public (`RecurrentNetwork.cachedSteps`);
#   3. a call, name followed by `(`, of a function that no declaration under that name makes public
#      (`addColumnSums(...)`), unless a public property or enum case has that name. When the name has public and
#      non-public overloads, the labels decide: a DocC selector (`forward(steps:batch:input:tokens:h0:…)`, `…`
#      for the rest) or a call (`net.forward(steps: 3, …)`, defaulted arguments may be left out) is an error
#      only when it fits a non-public declaration and no public one.
# Functions declared inside a function body, and functions a Swift sample declares itself (`func name(`), are not
# names of the library; `tanh(c_t)` and other math is never flagged unless Sources declares such a function
# non-public only.
set -euo pipefail

cd "$(dirname "$0")/.."
export RK_BUILD_DOCS=1 # Package.swift adds swift-docc-plugin only then
ROOT="$PWD"
SCRATCH="${SCRATCH:-$ROOT/.build-docs}"
status=0
# The library modules, each with its own DocC catalog (Sources/<module>/Documentation.docc).
MODULES="RecurrentKit RecurrentKitText RecurrentKitAnalysis RecurrentKitMPI"
docc_log="$(mktemp)"     # output of the swift commands
run_stamp="$(mktemp)"    # files newer than this were written by this run
dump_stamp=""
trap 'rm -f "$docc_log" "$run_stamp" "$dump_stamp"' EXIT

# The public symbol graphs of every module, dumped once (see (b) below for why its exit status is not trusted).
dump_stamp="$(mktemp)"
for dir in "$SCRATCH"/*/symbolgraph; do if [[ -d "$dir" ]]; then rm -rf "$dir"; fi; done
swift package --scratch-path "$SCRATCH" dump-symbol-graph \
    --minimum-access-level public --skip-synthesized-members --skip-inherited-docs >"$docc_log" 2>&1 || true
for MODULE in $MODULES; do
# ---------------------------------------------------------------------------------------------------------
# (a) DocC, warnings as errors (the swift-docc-plugin passes --warnings-as-errors on to docc).
# ---------------------------------------------------------------------------------------------------------
echo "== (a) DocC build of $MODULE (warnings are errors)"
# docc writes its diagnostics (unresolved links, documented parameters that do not exist, ...) as JSON to
# --diagnostics-file; they are listed from there as file:line. Swift compiler warnings printed while the plugin
# builds the target are not documentation problems and are not counted.
diagnostics="$(mktemp)"
listing="$(mktemp)"
trap 'rm -f "$docc_log" "$run_stamp" "$dump_stamp" "$diagnostics" "$listing"' EXIT
if swift package --scratch-path "$SCRATCH" generate-documentation --target "$MODULE" \
        --warnings-as-errors --diagnostics-file "$diagnostics" >"$docc_log" 2>&1; then
    docc_ok=1
else
    docc_ok=0
fi
count="$(python3 - "$diagnostics" "$ROOT" "$listing" <<'PYTHON'
import json, os, sys
from urllib.parse import unquote, urlparse
path, root, listing = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open(path, encoding="utf-8") as f:
        diagnostics = json.load(f).get("diagnostics", [])
except (OSError, ValueError):
    print(-1)          # no diagnostics file: docc did not run
    sys.exit(0)
lines = []
for d in diagnostics:
    if d.get("severity") not in ("warning", "error"):
        continue
    file = unquote(urlparse(d.get("source") or "").path) or "?"
    file = os.path.relpath(file, root) if file.startswith(root + "/") else file
    line = (d.get("range") or {}).get("start", {}).get("line", "?")
    lines.append(f"    {file}:{line}: {d['summary']}")
with open(listing, "w", encoding="utf-8") as f:
    f.writelines(l + "\n" for l in sorted(lines))
print(len(lines))
PYTHON
)"
if [[ $docc_ok -eq 1 && "$count" == "0" ]]; then
    echo "ok: $MODULE documentation built with no warnings"
else
    if [[ "$count" == "-1" ]]; then
        echo "FAIL: docc did not run; the end of the output:"
        tail -n 40 "$docc_log" | sed 's/^/    /'
    else
        echo "FAIL: $count documentation warning(s):"
        cat "$listing"
    fi
    status=1
fi

# ---------------------------------------------------------------------------------------------------------
# (b) Public symbols without a doc comment.
# ---------------------------------------------------------------------------------------------------------
echo "== (b) public and open symbols of $MODULE without a /// comment"
# `swift package dump-symbol-graph` writes $SCRATCH/<triple>/symbolgraph/RecurrentKit.symbols.json. It exits non-zero
# on Linux even when that file is written (it also tries the synthesized test modules, which it cannot load), so its
# status is not trusted: the folder is emptied first and the file must be there afterwards. If it is not (for example
# because another target of the package does not compile), the graph that the DocC plugin extracted in (a) is used,
# provided it was written during this run. The plugin's graph includes inherited doc comments; they carry the module
# they come from ("Swift", ...), which the check below does not accept as documentation.
graph="$(find "$SCRATCH" -path "*/symbolgraph/$MODULE.symbols.json" -newer "$dump_stamp" -print -quit 2>/dev/null || true)"
if [[ -z "$graph" ]]; then
    graph="$(find "$SCRATCH" -path "*/extracted-symbols/*/$MODULE/$MODULE.symbols.json" -newer "$run_stamp" \
        -print -quit 2>/dev/null || true)"
fi
if [[ -z "$graph" ]]; then
    echo "FAIL: no symbol graph for $MODULE (does the module build?):"
    grep -E 'error' "$docc_log" | head -n 20 | sed 's/^/    /' || true
    status=1; continue
fi
graph_dir="$(dirname "$graph")"
echo "symbol graph: ${graph_dir#"$ROOT"/}"

if ! python3 - "$graph_dir" "$ROOT" "$MODULE" <<'PYTHON'
import glob, json, os, sys
from urllib.parse import unquote, urlparse

graph_dir, root, module = sys.argv[1], sys.argv[2], sys.argv[3]
# Requirements of standard-library protocols (Equatable, Hashable, Comparable, Codable, RawRepresentable,
# CaseIterable, CustomStringConvertible, CustomDebugStringConvertible): see the rule at the top of the script.
STDLIB_WITNESSES = {
    "==", "!=", "<", "<=", ">", ">=", "hash(into:)", "hashValue",
    "init(from:)", "encode(to:)", "init(rawValue:)", "rawValue", "allCases",
    "description", "debugDescription",
}
files = sorted(glob.glob(os.path.join(graph_dir, f"{module}.symbols.json"))
               + glob.glob(os.path.join(graph_dir, f"{module}@*.symbols.json")))
if not files:
    sys.exit(f"no {module} symbol graph in {graph_dir}")
missing, checked = [], 0
for path in files:
    with open(path, encoding="utf-8") as f:
        graph = json.load(f)
    for symbol in graph["symbols"]:
        if symbol.get("accessLevel") not in ("public", "open"):
            continue
        location = symbol.get("location")
        precise = symbol["identifier"]["precise"]
        name = symbol["pathComponents"][-1]
        if location is None or "::SYNTHESIZED::" in precise:
            continue                                   # rule 1: compiler-synthesized
        if len(symbol["pathComponents"]) > 1 and name in STDLIB_WITNESSES:
            continue                                   # rule 2: stdlib protocol requirement
        checked += 1
        doc = symbol.get("docComment")
        lines = [l.get("text", "") for l in (doc or {}).get("lines", [])]
        if doc and doc.get("module", module) == module and any(l.strip() for l in lines):
            continue
        file = unquote(urlparse(location["uri"]).path)
        file = os.path.relpath(file, root) if file.startswith(root) else file
        line = location["position"]["line"] + 1        # the graph counts lines from 0
        missing.append((file, line, symbol["kind"]["displayName"], ".".join(symbol["pathComponents"])))
for file, line, kind, name in sorted(missing):
    print(f"    {file}:{line}: {kind} {name}")
if missing:
    print(f"FAIL: {len(missing)} of {checked} public symbols have no doc comment")
    sys.exit(1)
print(f"ok: all {checked} public symbols of {module} have a doc comment")
PYTHON
then
    status=1
fi

done

# ---------------------------------------------------------------------------------------------------------
# (c) Non-public types and functions named in the documentation (see the rule at the top of the script).
# ---------------------------------------------------------------------------------------------------------
echo "== (c) non-public types and functions named in code voice by the DocC articles and README.md"
if ! python3 - "$ROOT" <<'PYTHON'
import glob, os, re, sys

root = sys.argv[1]

# ---- Swift declarations ------------------------------------------------------------------------------------
MODIFIERS = {"public", "open", "private", "fileprivate", "internal", "package", "final", "static", "class",
             "override", "mutating", "nonmutating", "convenience", "required", "indirect", "lazy", "weak",
             "unowned", "nonisolated", "dynamic", "optional", "prefix", "postfix", "infix", "consuming",
             "borrowing", "isolated", "distributed"}
TYPE_KEYWORDS = {"class", "struct", "enum", "protocol", "actor"}
PUNCT = ["->", "...", "…"]


def tokenize(text):
    """Tokens of Swift source as (kind, value, line): identifiers (`name`), attributes (@x), punctuation; comments and
    string literals are dropped (a string literal becomes one "str" token, its interpolations are tokenized)."""
    tokens, i, n, line = [], 0, len(text), 1

    def skip_string(i, hashes, multiline):
        # i points just after the opening quote(s); returns the index after the closing delimiter.
        nonlocal line
        close = ('"""' if multiline else '"') + "#" * hashes
        while i < n:
            if text.startswith(close, i):
                return i + len(close)
            c = text[i]
            if c == "\n":
                line += 1
            if c == "\\" and text.startswith("#" * hashes, i + 1):
                j = i + 1 + hashes
                if j < n and text[j] == "(":          # interpolation: tokenize the code inside
                    depth, j = 1, j + 1
                    while j < n and depth:
                        if text[j] == '"':
                            j = skip_string(j + 1, 0, text.startswith('"""', j))
                            continue
                        depth += {"(": 1, ")": -1}.get(text[j], 0)
                        j += 1
                    i = j
                    continue
                i = j + 1
                continue
            i += 1
        return i

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1; i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i): depth += 1; i += 2
                elif text.startswith("*/", i): depth -= 1; i += 2
                else:
                    line += text[i] == "\n"; i += 1
        elif c == '"' or (c == "#" and re.match(r'#+"', text[i:])):
            hashes = 0
            while text[i] == "#":
                hashes += 1; i += 1
            multiline = text.startswith('"""', i)
            start_line = line
            i = skip_string(i + (3 if multiline else 1), hashes, multiline)
            tokens.append(("str", "", start_line))
        elif c.isalpha() or c == "_" or c == "`":
            m = re.match(r"`?[A-Za-z_][A-Za-z0-9_]*`?", text[i:])
            tokens.append(("name", m.group(0).strip("`"), line)); i += m.end()
        elif c == "@":
            m = re.match(r"@[A-Za-z_][A-Za-z0-9_]*", text[i:])
            if m:
                tokens.append(("attr", m.group(0), line)); i += m.end()
            else:
                tokens.append(("punct", c, line)); i += 1
        elif c == "#":
            m = re.match(r"#[A-Za-z_][A-Za-z0-9_]*", text[i:])
            tokens.append(("directive", m.group(0) if m else "#", line)); i += m.end() if m else 1
        elif c.isdigit():
            m = re.match(r"[0-9][0-9A-Za-z_.]*", text[i:])
            tokens.append(("number", m.group(0), line)); i += m.end()
        else:
            p = next((p for p in PUNCT if text.startswith(p, i)), c)
            tokens.append(("punct", p, line)); i += len(p)
    return tokens


def modifiers_before(tokens, k):
    """The access modifier written before the declaration keyword at tokens[k] ("public", "private", ... or None)."""
    access, j = None, k - 1
    while j >= 0:
        kind, value, _ = tokens[j]
        if kind == "punct" and value == ")" and j >= 3 and tokens[j - 1][1] == "set" and tokens[j - 2][1] == "(":
            j -= 4                                      # private(set), public(set): the setter's access
            continue
        if kind == "punct" and value == ")":            # @attr(...)
            depth, m = 0, j
            while m >= 0:
                depth += {")": 1, "(": -1}.get(tokens[m][1], 0) if tokens[m][0] == "punct" else 0
                if depth == 0:
                    break
                m -= 1
            if m > 0 and tokens[m - 1][0] == "attr":
                j = m - 2
                continue
            break
        if kind == "attr":
            j -= 1
            continue
        if kind == "name" and value in MODIFIERS:
            if value in ("public", "open", "private", "fileprivate", "internal", "package"):
                access = access or value
            j -= 1
            continue
        break
    return access


def parameters(tokens, k):
    """Parameter list of the function whose name is tokens[k]: [(label, has_default)], or None if unparsed."""
    j = k + 1
    if j < len(tokens) and tokens[j][1] == "<":        # generic parameter clause
        depth = 0
        while j < len(tokens):
            depth += {"<": 1, ">": -1}.get(tokens[j][1], 0)
            j += 1
            if depth == 0:
                break
    if j >= len(tokens) or tokens[j][1] != "(":
        return None
    params, current, depth, j = [], [], 0, j + 1
    while j < len(tokens):
        kind, value, _ = tokens[j]
        if kind == "punct" and value in "([{<" and value:
            depth += 1
        elif kind == "punct" and value in ")]}>" and value:
            if depth == 0 and value == ")":
                break
            depth -= 1
        if kind == "punct" and value == "," and depth == 0:
            params.append(current); current = []
        else:
            current.append(tokens[j])
        j += 1
    if current:
        params.append(current)
    result = []
    for p in params:
        colon = next((i for i, t in enumerate(p) if t[1] == ":"), None)
        if colon is None:
            return None
        names = [t[1] for t in p[:colon] if t[0] == "name" and t[1] not in ("isolated", "sending")]
        if not names:
            return None
        result.append((names[0], any(t[1] == "=" for t in p[colon:])))
    return result


# name -> [(public, qualified name, where, local)], name -> [(public, [(label, has default)] or None, where)];
# public_names: public types, properties and enum cases (a call of such a name may not be a function call).
# members: type name -> [(member name, public, where)] (funcs, properties, cases, nested types; extensions count).
types, funcs, public_names, members = {}, {}, set(), {}
for path in sorted(glob.glob(os.path.join(root, "Sources", "**", "*.swift"), recursive=True)):
    rel = os.path.relpath(path, root)
    with open(path, encoding="utf-8") as f:
        tokens = tokenize(f.read())
    # stack: one (kind, name, public, qualified name) per open brace, kind "block" for code (function bodies, closures,
    # accessors); pending: the type or extension whose body the next brace opens.
    stack, pending = [], None
    for k, (kind, value, line) in enumerate(tokens):
        if kind == "punct" and value == "{":
            stack.append(pending or ("block", None, False, None)); pending = None
            continue
        if kind == "punct" and value == "}":
            if stack: stack.pop()
            continue
        if kind != "name":
            continue
        nxt = tokens[k + 1] if k + 1 < len(tokens) else ("", "", 0)
        parent = stack[-1] if stack else None
        in_body = parent is not None and parent[0] == "block"
        access = modifiers_before(tokens, k)
        # Default access inside a public protocol or a public extension is public.
        implied = parent is not None and parent[0] in ("protocol", "extension") and parent[2] and access is None
        is_public = access in ("public", "open") or implied
        if value in TYPE_KEYWORDS | {"extension"} and nxt[0] == "name" and not (
                value == "class" and nxt[1] in MODIFIERS | {"func", "var", "let", "subscript", "init"}):
            if value == "extension":
                pending = ("extension", nxt[1], access in ("public", "open"), None)
                continue
            qualified = nxt[1]
            if parent is not None and parent[0] != "block" and parent[3]:
                qualified = f"{parent[3]}.{nxt[1]}"
            if parent is not None and parent[0] == "extension":
                qualified = f"{parent[1]}.{nxt[1]}"
            pending = (value, nxt[1], is_public, qualified)
            if in_body:
                continue
            types.setdefault(nxt[1], []).append((is_public, qualified, f"{rel}:{line}", in_body))
            if is_public: public_names.add(nxt[1])
            if parent is not None:
                members.setdefault(parent[1], []).append((nxt[1], is_public, f"{rel}:{line}"))
        elif value == "typealias" and nxt[0] == "name":
            types.setdefault(nxt[1], []).append((is_public, nxt[1], f"{rel}:{line}", in_body))
            if is_public: public_names.add(nxt[1])
        elif value == "func" and nxt[0] == "name" and not in_body:   # local functions are not nameable
            funcs.setdefault(nxt[1], []).append((is_public, parameters(tokens, k + 1), f"{rel}:{line}"))
            if parent is not None:
                members.setdefault(parent[1], []).append((nxt[1], is_public, f"{rel}:{line}"))
        elif value in ("var", "let") and nxt[0] == "name" and not in_body:
            if is_public: public_names.add(nxt[1])
            if parent is not None:
                members.setdefault(parent[1], []).append((nxt[1], is_public, f"{rel}:{line}"))
        elif value == "case" and parent is not None and parent[0] == "enum" and parent[2]:
            # cases of a public enum are public: `case a, b(x: Int)`
            j = k + 1
            while j < len(tokens) and tokens[j][0] == "name":
                public_names.add(tokens[j][1])
                members.setdefault(parent[1], []).append((tokens[j][1], True, f"{rel}:{line}"))
                j += 1
                if j < len(tokens) and tokens[j][1] == "(":
                    depth = 0
                    while j < len(tokens):
                        depth += {"(": 1, ")": -1}.get(tokens[j][1], 0); j += 1
                        if depth == 0: break
                if j + 1 < len(tokens) and tokens[j][1] == "=":      # raw value
                    j += 2
                if j < len(tokens) and tokens[j][1] == ",":
                    j += 1
                    continue
                break


# ---- Names the documentation must not use --------------------------------------------------------------------
# Types: CamelCase names declared without `public`/`open` and never declared public under that name (a top-level
# name, or Outer.Inner for a type nested in another).
internal_types = {}
for name, decls in types.items():
    if any(d[0] for d in decls) or not name[:1].isupper():
        continue
    for _, qualified, where, _ in decls:
        internal_types[qualified] = where
public_funcs = {n: [d[1] for d in ds if d[0]] for n, ds in funcs.items()}
internal_funcs = {n: [(d[1], d[2]) for d in ds if not d[0]] for n, ds in funcs.items()}


def labels_match(call, params, selector, trailing_closure):
    """Whether argument labels written in the docs fit a declaration's parameters. A selector (`f(a:b:)`) names every
    parameter (`…` at its end: any more); a call (`f(x, b: 1)`) may leave out defaulted ones, `…` stands for any."""
    if params is None:
        return True
    if selector:
        prefix = call[-1:] == ["*"]
        labels = call[:-1] if prefix else call
        mine = [p[0] for p in params]
        return mine[:len(labels)] == labels if prefix else mine == labels

    def match(ci, pi):
        if ci == len(call):
            rest = params[pi:]
            if trailing_closure and rest and not rest[-1][1]:
                rest = rest[:-1]
            return all(p[1] for p in rest)
        if call[ci] == "*":
            return any(match(ci + 1, pj) for pj in range(pi, len(params) + 1))
        if pi == len(params):
            return False
        label, has_default = params[pi]
        if label == call[ci] and match(ci + 1, pi + 1):
            return True
        return has_default and match(ci, pi + 1)
    return match(0, 0)


def split_arguments(text):
    """Top-level comma-separated pieces of an argument list."""
    parts, depth, current = [], 0, ""
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(current); current = ""
        else:
            current += c
    if current.strip():
        parts.append(current)
    return parts


SELECTOR = re.compile(r"^\s*((?:(?:[A-Za-z_][A-Za-z0-9_]*|_):)*)\s*(…|\.\.\.)?\s*$")
ELLIPSIS = {"…", "...", "…,"}


def check_call(name, region, open_paren):
    """A reason to flag the call of `name` whose `(` is region[open_paren], or None."""
    decls = internal_funcs.get(name)
    if not decls:
        return None
    if not public_funcs.get(name):
        if name in public_names:
            return None                      # a public property or enum case of that name
        return f"function {name}(…) is not public ({decls[0][1]})"
    # Overloaded: flag only when the written labels fit a non-public declaration and no public one.
    depth, j = 0, open_paren
    while j < len(region):
        depth += {"(": 1, ")": -1}.get(region[j], 0)
        if depth == 0:
            break
        j += 1
    if depth:
        return None
    inner = region[open_paren + 1:j]
    trailing_closure = region[j + 1:].lstrip(" ").startswith("{")
    m = SELECTOR.match(inner)
    if m and (m.group(1) or m.group(2) or not inner.strip()) and " " not in m.group(1):
        selector = True
        call = [l for l in m.group(1).split(":") if l] + (["*"] if m.group(2) else [])
    else:
        selector = False
        call = []
        for argument in split_arguments(inner):
            argument = argument.strip()
            if argument in ELLIPSIS:
                call.append("*")
                continue
            label = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:(?!:)", argument)
            call.append(label.group(1) if label else "_")
    if any(labels_match(call, p, selector, trailing_closure) for p in public_funcs[name]):
        return None
    for params, where in decls:
        if labels_match(call, params, selector, trailing_closure):
            return f"{name}({inner.strip()}) is not public ({where})"
    return None


def code_regions(text, swift_fences_only):
    """(first line, code) for every inline code span (single or double backticks) outside fences and for the contents of
    fenced blocks (with swift_fences_only, only those marked `swift`)."""
    lines = text.split("\n")
    prose, fence, block, block_line = [], None, [], 0
    for number, line in enumerate(lines, 1):
        m = re.match(r"\s*(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)", line)
        if fence is None:
            if m:
                fence, language, block, block_line = m.group(1), m.group(2).lower(), [], number + 1
                prose.append("")
            else:
                prose.append(line)
            continue
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
            if not swift_fences_only or language == "swift":
                yield block_line, "\n".join(block)
            fence = None
            prose.append("")
            continue
        block.append(line)
        prose.append("")
    prose_text = "\n".join(prose)
    for m in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", prose_text, re.S):
        if re.search(r"\n\s*\n", m.group(2)):
            continue
        yield prose_text.count("\n", 0, m.start(2)) + 1, m.group(2)


documents = sorted(glob.glob(os.path.join(root, "Sources", "*", "Documentation.docc", "**", "*.md"), recursive=True))
documents += [os.path.join(root, "README.md")]
findings = []
for path in documents:
    rel = os.path.relpath(path, root)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for first_line, code in code_regions(text, swift_fences_only=rel == "README.md"):
        for m in re.finditer(r"(?<![A-Za-z0-9_])([A-Z][A-Za-z0-9_]*)((?:[./][A-Za-z_][A-Za-z0-9_]*)*)", code):
            parts = [m.group(1)] + re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2))
            line = first_line + code.count("\n", 0, m.start())
            for n in range(len(parts), 0, -1):            # longest qualified prefix that is an internal type
                qualified = ".".join(parts[:n])
                if qualified in internal_types:
                    where = internal_types[qualified]
                    findings.append((rel, line, m.group(0), f"type {qualified} is not public ({where})"))
                    break
            else:
                # PublicType.member: a member the type declares (in its body or extensions) only without public.
                for owner, member in zip(parts, parts[1:]):
                    declared = members.get(owner, [])
                    hidden = [d for d in declared if d[0] == member and not d[1]]
                    if hidden and not any(d[0] == member and d[1] for d in declared):
                        findings.append((rel, line, m.group(0), f"{owner}.{member} is not public ({hidden[0][2]})"))
                        break
        for m in re.finditer(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)\(", code):
            if re.search(r"\bfunc\s+$", code[:m.start()]):
                continue                                    # a function the sample declares itself
            reason = check_call(m.group(1), code, m.end() - 1)
            if reason:
                line = first_line + code.count("\n", 0, m.start())
                findings.append((rel, line, m.group(1) + "(", reason))
for rel, line, text, reason in sorted(set(findings)):
    print(f"    {rel}:{line}: `{text}`: " + " ".join(reason.split()))
if findings:
    print(f"FAIL: {len(set(findings))} mention(s) of non-public symbols in code voice in the documentation")
    sys.exit(1)
known = sum(1 for d in internal_funcs.values() if d)
print(f"ok: {len(documents)} documents name no non-public type or function in code voice "
      f"({len(internal_types)} non-public types and {known} non-public function names in Sources/)")
PYTHON
then
    status=1
fi

exit $status
