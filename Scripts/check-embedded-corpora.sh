#!/usr/bin/env bash
# Checks the embedded corpora (Sources/_RecurrentKitCorpora). Fails (non-zero exit) when
#   (1) the committed corpora/*.inc files differ from what Scripts/generate-embedded-corpora.py generates from the
#       .txt files, or
#   (2) for each C compiler found (clang, gcc, cc; the same binary twice is skipped), corpora.c built normally (#embed when the
#       compiler has it) or with -DRK_CORPORA_WITHOUT_EMBED (the .inc fallback) does not return exactly the bytes of
#       the .txt files, or takes the wrong path (#embed must be used exactly when the compiler defines __has_embed,
#       never when the fallback is forced).
# The test program is written to a temporary directory, never into the repository. Runs from any directory.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=Sources/_RecurrentKitCorpora
CORPORA=(timemachine tinyshakespeare)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# (1) Generated files up to date.
if python3 Scripts/generate-embedded-corpora.py --check; then
    echo "ok: $SRC/corpora/*.inc match the .txt files (Scripts/generate-embedded-corpora.py --check)"
else
    fail "$SRC/corpora/*.inc are out of date; run Scripts/generate-embedded-corpora.py"
fi

# (2) Both paths give the .txt bytes.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The test program compiles corpora.c into itself (so it sees which path corpora.c took), writes each corpus to
# <outdir>/<name>.bin and prints the path taken.
cat > "$work/main.c" <<'EOF'
#include <stdio.h>
#include "corpora.c"

static int dump(const char *dir, const char *name, const unsigned char *bytes, size_t count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    size_t written = fwrite(bytes, 1, count, f);
    return (fclose(f) != 0 || written != count) ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    size_t n;
    const unsigned char *p;
    int rc = 0;
    p = rk_corpus_timemachine(&n);
    rc |= dump(argv[1], "timemachine", p, n);
    p = rk_corpus_tinyshakespeare(&n);
    rc |= dump(argv[1], "tinyshakespeare", p, n);
    puts(RK_CORPORA_USE_EMBED ? "embed" : "fallback");
    return rc;
}
EOF

compilers=()
seen=""
for cc in clang gcc cc; do
    command -v "$cc" >/dev/null 2>&1 || continue
    resolved=$(readlink -f "$(command -v "$cc")")
    case "$seen" in *"|$resolved|"*) continue ;; esac
    seen="$seen|$resolved|"
    compilers+=("$cc")
done
if [ ${#compilers[@]} -eq 0 ]; then
    fail "no C compiler found (tried clang, gcc, cc)"
fi

embed_checked=0
for cc in "${compilers[@]}"; do
    version=$("$cc" -dumpversion 2>/dev/null || echo "version unknown")
    # Does this compiler's preprocessor know __has_embed?
    if printf '#ifdef __has_embed\nRK_HAS_EMBED\n#endif\n' | "$cc" -std=gnu2x -E -x c - 2>/dev/null | grep -q RK_HAS_EMBED; then
        has_embed=embed
    else
        has_embed=fallback
    fi
    for mode in normal forced-fallback; do
        if [ "$mode" = normal ]; then flags=(); expected=$has_embed; else flags=(-DRK_CORPORA_WITHOUT_EMBED); expected=fallback; fi
        out="$work/$cc-$mode"
        mkdir -p "$out"
        label="$cc $version, $mode"
        if ! "$cc" -std=gnu2x -O0 -Wall -Wextra -Werror "${flags[@]}" -I "$SRC" -I "$SRC/include" \
                "$work/main.c" -o "$out/test" 2> "$out/cc.log"; then
            fail "$label: does not compile:"; sed 's/^/    /' "$out/cc.log" | head -n 20
            continue
        fi
        if ! path=$("$out/test" "$out"); then
            fail "$label: the test program failed"
            continue
        fi
        if [ "$path" != "$expected" ]; then
            fail "$label: corpora.c took the $path path, expected $expected"
            continue
        fi
        ok=1
        sizes=""
        for name in "${CORPORA[@]}"; do
            txt="$SRC/corpora/$name.txt"
            want=$(wc -c < "$txt"); got=$(wc -c < "$out/$name.bin")
            if [ "$want" -ne "$got" ]; then
                fail "$label: $name is $got bytes, $txt is $want"; ok=0
            elif ! cmp -s "$out/$name.bin" "$txt"; then
                fail "$label: $name differs from $txt: $(cmp "$out/$name.bin" "$txt" 2>&1 || true)"; ok=0
            fi
            sizes="$sizes, $name $got bytes"
        done
        [ "$path" = embed ] && embed_checked=1
        [ $ok = 1 ] && echo "ok: $label: $path path gives the .txt bytes${sizes}"
    done
done
if [ $embed_checked = 0 ]; then
    echo "note: no compiler here supports #embed (clang >= 19, GCC >= 15); only the .inc fallback was checked"
fi

if [ $failures -ne 0 ]; then
    echo "check-embedded-corpora: $failures check(s) failed"
    exit 1
fi
echo "check-embedded-corpora: all checks passed"
