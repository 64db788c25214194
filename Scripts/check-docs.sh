#!/usr/bin/env bash
# Checks RecurrentKit's documentation. Fails (non-zero exit) when
#   (a) the DocC catalog (Sources/RecurrentKit/Documentation.docc) and the `///` comments do not build
#       without warnings (unresolved symbol links, parameters documented that do not exist, ...), or
#   (b) a public or open symbol of the RecurrentKit module has no `///` doc comment.
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
set -euo pipefail

cd "$(dirname "$0")/.."
export RK_BUILD_DOCS=1 # Package.swift adds swift-docc-plugin only then
ROOT="$PWD"
SCRATCH="${SCRATCH:-$ROOT/.build-docs}"
status=0
# The library modules, each with its own DocC catalog (Sources/<module>/Documentation.docc).
MODULES="RecurrentKit RecurrentKitText RecurrentKitAnalysis"
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

exit $status
