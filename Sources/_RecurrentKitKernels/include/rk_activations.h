#ifndef RK_ACTIVATIONS_H
#define RK_ACTIVATIONS_H
#include <stddef.h>
#include <math.h>

// libm through the C module, so Swift code needs no platform module (Glibc, Musl, Darwin) for these. Inline, so a
// call costs what a direct libm call costs and gives the same bits.
static inline float rk_tanhf(float x) { return tanhf(x); }
static inline float rk_expf(float x) { return expf(x); }
static inline float rk_logf(float x) { return logf(x); }
static inline double rk_tanh(double x) { return tanh(x); }
static inline double rk_exp(double x) { return exp(x); }
static inline double rk_log(double x) { return log(x); }
static inline double rk_cos(double x) { return cos(x); }
static inline double rk_pow(double x, double y) { return pow(x, y); }

/// In place x[i] = tanh(x[i]) for n floats: AVX2+FMA (Cephes-style, max error about 2 ulp) when available, libm otherwise.
void rk_tanh_f32(float *x, ptrdiff_t n);
/// In place x[i] = 1 / (1 + exp(-x[i])) for n floats, vectorised like rk_tanh_f32.
void rk_sigmoid_f32(float *x, ptrdiff_t n);
/// Same functions always through libm (the reference the vector paths are tested against).
void rk_tanh_f32_reference(float *x, ptrdiff_t n);
/// Reference sigmoid through libm.
void rk_sigmoid_f32_reference(float *x, ptrdiff_t n);
#endif
