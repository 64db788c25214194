#!/usr/bin/env bash
# The C kernels run on aarch64 (and at every level of this CPU): builds Scripts/aarch64/kernel_selftest.c with the
# kernels (Sources/_RecurrentKitKernels/*.c)
#   - for this machine, and runs it: every instruction-set level the CPU has (AVX-512, AVX2+FMA, portable);
#   - for aarch64-linux-gnu with clang (static, lld), and runs it under qemu-aarch64: the portable kernels as an ARM
#     server or an Apple device builds them (no x86 path compiled in).
# The self-test checks every product against a plain loop in double, every element-wise kernel against its formula bit
# for bit, and 1 against 2 threads bit for bit. Needs clang, and for the aarch64 half libc6-dev-arm64-cross,
# libgcc-12-dev-arm64-cross and qemu-user-static (Debian); without them that half is skipped with a line saying so,
# unless RK_REQUIRE_AARCH64=1, which makes it a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d "${TMPDIR:-/tmp}/rk-aarch64.XXXXXX")
trap 'rm -rf "$out"' EXIT
kernels=(Sources/_RecurrentKitKernels/*.c)
flags=(-O2 -std=gnu2x -Wall -ISources/_RecurrentKitKernels/include -ISources/_RecurrentKitKernels)
driver=Scripts/aarch64/kernel_selftest.c

clang "${flags[@]}" "${kernels[@]}" -ffp-contract=off "$driver" -o "$out/native" -lm -lpthread
"$out/native" | grep -E "^level [0-9]+ of|: ok$|FAIL|self-test" || { echo "check-aarch64-kernels: the native self-test failed" >&2; exit 1; }

qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
gcc_cross=$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/*/ 2>/dev/null | head -n 1 || true)
if [ -z "$qemu" ] || [ -z "$gcc_cross" ] || ! [ -d /usr/aarch64-linux-gnu/include ]; then
    message="qemu-aarch64 or the aarch64 cross libraries (libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross) are missing"
    if [ "${RK_REQUIRE_AARCH64:-0}" = 1 ]; then echo "check-aarch64-kernels: $message" >&2; exit 1; fi
    echo "check-aarch64-kernels: skipped the aarch64 run ($message)"
    exit 0
fi
cross=(clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu --gcc-toolchain=/usr -fuse-ld=lld -static)
# The toolchain first (an environment without a working cross link is skipped, not failed); then the kernels.
printf '#include <math.h>\nint main(void) { return (int)sqrt(0.0); }\n' >"$out/probe.c"
if ! "${cross[@]}" "$out/probe.c" -o "$out/probe" -lm 2>"$out/probe.log" || ! "$qemu" "$out/probe"; then
    message="clang cannot link and run a static aarch64 program here ($(head -n 1 "$out/probe.log"))"
    if [ "${RK_REQUIRE_AARCH64:-0}" = 1 ]; then echo "check-aarch64-kernels: $message" >&2; exit 1; fi
    echo "check-aarch64-kernels: skipped the aarch64 run ($message)"
    exit 0
fi
"${cross[@]}" "${flags[@]}" "${kernels[@]}" -ffp-contract=off "$driver" -o "$out/aarch64" -lm -lpthread
file_type=$(od -An -tx1 -j18 -N2 "$out/aarch64" | tr -d ' ')
[ "$file_type" = b700 ] || { echo "check-aarch64-kernels: the cross build is not an aarch64 ELF (e_machine $file_type)" >&2; exit 1; }
"$qemu" "$out/aarch64" | grep -E "^level [0-9]+ of|: ok$|FAIL|self-test" \
    || { echo "check-aarch64-kernels: the aarch64 self-test failed under $qemu" >&2; exit 1; }
echo "check-aarch64-kernels: ok (this CPU at every level, and aarch64 under $(basename "$qemu"))"
