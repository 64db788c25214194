#ifndef RK_PEAK_H
#define RK_PEAK_H
#include <stdint.h>

/// Runs `iterations` rounds of 12 independent fused multiply-add chains per vector register at the given
/// instruction-set level (RK_LEVEL_*; capped at the detected level) and returns the float operations done
/// (2 per lane per FMA). Time it to get the core's FMA peak in FLOP/s.
double rk_fma_peak_flops(int level, int64_t iterations);
/// Runs `iterations` rounds of 12 independent vdpbf16ps chains (AVX512_BF16) and returns the float operations done
/// (4 per lane: two products and two additions); 0 without AVX512_BF16 at the active level. The ceiling of bf16
/// mixed-precision products.
double rk_bf16_dot_peak_flops(int64_t iterations);
#endif
