#ifndef RK_ACTIVATIONS_H
#define RK_ACTIVATIONS_H
#include <stddef.h>

/// In place x[i] = tanh(x[i]) for n floats: AVX2+FMA (Cephes-style, max error about 2 ulp) when available, libm otherwise.
void rk_tanh_f32(float *x, ptrdiff_t n);
/// In place x[i] = 1 / (1 + exp(-x[i])) for n floats, vectorised like rk_tanh_f32.
void rk_sigmoid_f32(float *x, ptrdiff_t n);
/// Same functions always through libm (the reference the vector paths are tested against).
void rk_tanh_f32_reference(float *x, ptrdiff_t n);
/// Reference sigmoid through libm.
void rk_sigmoid_f32_reference(float *x, ptrdiff_t n);
#endif
