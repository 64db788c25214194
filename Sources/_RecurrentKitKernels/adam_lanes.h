// Adam's element-wise update, written once in the macros of simd_lanes.h; optimizer_steps.c includes this file at 16,
// 8 and 1 lanes (RK_LANES). The operations and their order are those of Adam.step's Swift loop (rk_optimizer.h), each
// rounded on its own (contraction off in the including file; the square root and the divisions are exact in IEEE
// arithmetic at every width). Runs from i while a whole vector fits before end and returns where it stopped. Not a
// public header.
#include "simd_lanes.h"

static LANES_TARGET ptrdiff_t LANES(adam)(ptrdiff_t i, float *p, const float *g, float *m, float *v, ptrdiff_t end,
                                          const rk_adam_f32_args *a) {
    const VF b1 = VSET1(a->b1), b2 = VSET1(a->b2), ob2 = VSET1(a->oneMinusB2), bc2 = VSET1(a->bc2);
    const VF eps = VSET1(a->eps), step = VSET1(a->stepSize), wd = VSET1(a->wd), decay = VSET1(a->decay);
    for (; i + VL <= end; i += VL) {
        VF grad = VLOAD(g + i), pi = VLOAD(p + i);
        if (a->decayMode == 2) pi = VMUL(pi, decay);
        else if (a->decayMode == 1) grad = VADD(grad, VMUL(wd, pi));
        VF mi = VADD(VLOAD(m + i), VMUL(VSUB(grad, VLOAD(m + i)), b1));
        VF vi = VADD(VMUL(VLOAD(v + i), b2), VMUL(VMUL(ob2, grad), grad));
        VSTORE(m + i, mi);
        VSTORE(v + i, vi);
        VF denominator = VADD(VDIV(VSQRT(vi), bc2), eps);
        VSTORE(p + i, VSUB(pi, VMUL(step, VDIV(mi, denominator))));
    }
    return i;
}

#undef RK_LANES
