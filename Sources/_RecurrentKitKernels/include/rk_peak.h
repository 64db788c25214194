#ifndef RK_PEAK_H
#define RK_PEAK_H
#include <stdint.h>

/// Runs `iterations` rounds of 12 independent fused multiply-add chains per vector register at the given
/// instruction-set level (RK_LEVEL_*; capped at the detected level) and returns the float operations done
/// (2 per lane per FMA). Time it to get the core's FMA peak in FLOP/s.
double rk_fma_peak_flops(int level, int64_t iterations);
#endif
