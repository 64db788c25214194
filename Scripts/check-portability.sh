#!/usr/bin/env bash
# Portability by construction (this machine cannot build for Apple platforms): fails on Swift source that would not
# compile on macOS/iOS or on Musl-based Linux.
#  - a platform module (Glibc, Musl, Darwin) imported outside an `#if canImport(...)` guard;
#  - a qualified platform symbol (`Glibc.exit`, `Darwin.exp`, ...) or a Linux-only spelling (`__rusage_who_t`,
#    `st_mtim`, `st_mtimespec`) outside Sources/RecurrentKit/Support/Platform.swift, the one shim;
#  - availability-gated API: `Float16` (unavailable on macOS x86_64), `String(validating:` (macOS 15), `@available`
#    (the package declares no `platforms:`), anywhere in Sources.
# Also syntax-checks the C kernels for aarch64 when a cross sysroot is installed (libc6-dev-arm64-cross).
set -euo pipefail
cd "$(dirname "$0")/.."
shim=Sources/RecurrentKit/Support/Platform.swift
problems=0
report() { echo "check-portability: $1" >&2; problems=$((problems + 1)); }

while IFS= read -r file; do
    # Every platform import must sit directly under an #if/#elseif canImport of that module.
    awk -v f="$file" '
        /^[[:space:]]*import (Glibc|Musl|Darwin)[[:space:]]*$/ {
            module = $2
            if (previous !~ "^[[:space:]]*#(if|elseif) canImport\\(" module "\\)") { printf "%s:%d: unguarded import %s\n", f, NR, module; bad = 1 }
        }
        { previous = $0 }
        END { exit bad }' "$file" >&2 || problems=$((problems + 1))
    if [ "$file" != "$shim" ]; then
        if grep -nE '\b(Glibc|Musl|Darwin)\.[a-zA-Z_]' "$file" | grep -v '^\s*//' >&2; then report "$file: qualified platform symbol (use the shim in $shim)"; fi
        if grep -nE '__rusage_who_t|\bst_mtim\b|st_mtimespec' "$file" >&2; then report "$file: platform-specific spelling (belongs in $shim)"; fi
    fi
    if grep -nE '\bFloat16\b|String\(validating:|@available\(' "$file" | grep -vE '^[0-9]+:\s*///?' >&2; then
        report "$file: availability-gated API (Float16, String(validating:), @available)"
    fi
done < <(find Sources -name '*.swift' | sort)

if [ -d /usr/aarch64-linux-gnu/include ] && command -v clang >/dev/null; then
    for c in Sources/_RecurrentKitKernels/*.c Sources/_RecurrentKitMPI/*.c; do
        clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include \
            -ISources/_RecurrentKitKernels/include -ISources/_RecurrentKitMPI/include -std=gnu2x -fsyntax-only -Wall "$c" || report "$c does not compile for aarch64"
    done
    echo "check-portability: C kernels compile for aarch64"
fi

if [ "$problems" -gt 0 ]; then echo "check-portability: $problems problem(s)" >&2; exit 1; fi
echo "check-portability: ok ($(find Sources -name '*.swift' | wc -l) Swift files; platform differences only in $shim)"
