#ifndef RK_OPTIMIZER_H
#define RK_OPTIMIZER_H
#include <stddef.h>

/// Constants of one Adam update in Float (Sources/RecurrentKit/Optimization/Optimizers.swift computes them).
typedef struct {
    float b1;          ///< 1 - beta1
    float b2;          ///< beta2
    float oneMinusB2;  ///< 1 - beta2
    float bc2;         ///< sqrt(1 - beta2^t)
    float eps;         ///< epsilon
    float stepSize;    ///< learning rate / (1 - beta1^t)
    float wd;          ///< weight decay (coupled: added to the gradient)
    float decay;       ///< 1 - learning rate * weight decay (decoupled)
    int decayMode;     ///< 0 none, 1 coupled (Adam), 2 decoupled (AdamW)
} rk_adam_f32_args;

/// One Adam update of n Float parameters, element by element in the order of Adam.step's Swift loop (grad = g, or
/// g + wd p; or p = p decay first; m = m + (grad - m) b1; v = v b2 + (oneMinusB2 grad) grad; p = p - stepSize (m /
/// (sqrt(v) / bc2 + eps))), each operation rounded on its own, so every level and thread count gives its bits. Split
/// over the kernel pool when n is large.
void rk_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n, const rk_adam_f32_args *args);
#endif
