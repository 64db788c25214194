// Portable kernels (any CPU): GCC/Clang generic vectors, lowered to SSE2 on x86-64 and NEON on arm64.
#include "rk_internal.h"
#include <string.h>

typedef float rk_v4f __attribute__((vector_size(16)));
typedef double rk_v2d __attribute__((vector_size(16)));

static inline rk_v4f rk_ld4f(const float *p) { rk_v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void rk_st4f(float *p, rk_v4f v) { memcpy(p, &v, sizeof v); }
static inline rk_v4f rk_ldm4f(const float *p, int n) {
    float t[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return rk_ld4f(t);
}
static inline void rk_stm4f(float *p, int n, rk_v4f v) {
    float t[4];
    rk_st4f(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}
static inline rk_v2d rk_ld2d(const double *p) { rk_v2d v; memcpy(&v, p, sizeof v); return v; }
static inline void rk_st2d(double *p, rk_v2d v) { memcpy(p, &v, sizeof v); }
static inline rk_v2d rk_ldm2d(const double *p, int n) {
    double t[2] = {0, 0};
    for (int i = 0; i < n; i++) t[i] = p[i];
    return rk_ld2d(t);
}
static inline void rk_stm2d(double *p, int n, rk_v2d v) {
    double t[2];
    rk_st2d(t, v);
    for (int i = 0; i < n; i++) p[i] = t[i];
}

// Lane l of the result = sum of the lanes of v[l], same tree for every lane.
static inline rk_v4f rk_reduce4f(const rk_v4f *v) {
    rk_v4f r;
    for (int l = 0; l < 4; l++) r[l] = (v[l][0] + v[l][1]) + (v[l][2] + v[l][3]);
    return r;
}
static inline rk_v2d rk_reduce2d(const rk_v2d *v) {
    rk_v2d r;
    for (int l = 0; l < 2; l++) r[l] = v[l][0] + v[l][1];
    return r;
}

#define TGT
#define RED_LANE(l) (l)
#define VMASK int
#define VMASK_FIRST(n) (n)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))

// ---- float: 4 x 8 tile of 4-lane vectors ----
#define T float
#define SFX(x) x##_s_portable
#define OPS_T rk_ops_s
#define OPS_NAME rk_ops_s_portable
#define VT rk_v4f
#define VL 4
#define MR 4
#define NV 2
#define KC_ 256
#define MC_ 64
#define NC_ 1024
#define VZERO() ((rk_v4f){0, 0, 0, 0})
#define VLOAD(p) rk_ld4f(p)
#define VSTORE(p, v) rk_st4f(p, v)
#define VBCAST(x) ((rk_v4f){(x), (x), (x), (x)})
#define VLOADM(p, m) rk_ldm4f(p, m)
#define VSTOREM(p, m, v) rk_stm4f(p, m, v)
#define DR 4
#define DC 2
#define VREDUCE(vv) rk_reduce4f(vv)
#include "gemm_template.h"
#undef T
#undef SFX
#undef OPS_T
#undef OPS_NAME
#undef VT
#undef VL
#undef MR
#undef NV
#undef KC_
#undef MC_
#undef NC_
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VLOADM
#undef VSTOREM
#undef DR
#undef DC
#undef VREDUCE

// ---- double: 4 x 4 tile of 2-lane vectors ----
#define T double
#define SFX(x) x##_d_portable
#define OPS_T rk_ops_d
#define OPS_NAME rk_ops_d_portable
#define VT rk_v2d
#define VL 2
#define MR 4
#define NV 2
#define KC_ 256
#define MC_ 64
#define NC_ 512
#define VZERO() ((rk_v2d){0, 0})
#define VLOAD(p) rk_ld2d(p)
#define VSTORE(p, v) rk_st2d(p, v)
#define VBCAST(x) ((rk_v2d){(x), (x)})
#define VLOADM(p, m) rk_ldm2d(p, m)
#define VSTOREM(p, m, v) rk_stm2d(p, m, v)
#define DR 4
#define DC 2
#define VREDUCE(vv) rk_reduce2d(vv)
#include "gemm_template.h"
