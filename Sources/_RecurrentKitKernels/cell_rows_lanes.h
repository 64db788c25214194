// The element-wise loops of one LSTM or GRU step row, written once in the macros of simd_lanes.h; cell_rows.c includes
// this file at 16, 8 and 1 lanes (RK_LANES). Each loop starts at j, stops before the last partial vector and returns
// where it stopped. The operations and their order are those of the Swift loops in LSTMCell.swift and GRUCell.swift,
// each rounded on its own. Not a public header.
#include "simd_lanes.h"

// LSTM: c = (f * cPrev) + (i * g), rows of gates i|f|g|o.
static LANES_TARGET ptrdiff_t LANES(lstm_cell_row)(ptrdiff_t j, const float *gi, const float *cPrev, float *c,
                                                   ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H;
    for (; j + VL <= H; j += VL) VSTORE(c + j, VADD(VMUL(VLOAD(gf + j), VLOAD(cPrev + j)), VMUL(VLOAD(gi + j), VLOAD(gg + j))));
    return j;
}

// out = x * y (the LSTM's output o * tanh(c)).
static LANES_TARGET ptrdiff_t LANES(mul_row)(ptrdiff_t j, const float *x, const float *y, float *out, ptrdiff_t n) {
    for (; j + VL <= n; j += VL) VSTORE(out + j, VMUL(VLOAD(x + j), VLOAD(y + j)));
    return j;
}

// x = x + row (a bias added to a row; the GRU's r and z pre-activations).
static LANES_TARGET ptrdiff_t LANES(add_row)(ptrdiff_t j, float *x, const float *row, ptrdiff_t n) {
    for (; j + VL <= n; j += VL) VSTORE(x + j, VADD(VLOAD(x + j), VLOAD(row + j)));
    return j;
}

// dhT = dh + dOut; dcT = dc + (dhT * o) * (1 - tanhC * tanhC); di = ((dcT * g) * i) * (1 - i);
// df = ((dcT * cPrev) * f) * (1 - f); dg = (dcT * i) * (1 - g * g); do = ((dhT * tanhC) * o) * (1 - o); dc = dcT * f.
static LANES_TARGET ptrdiff_t LANES(lstm_backward_row)(ptrdiff_t j, const float *gi, float *di, const float *cPrev,
                                                       const float *tc, const float *dh, float *dc, const float *dOut,
                                                       ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H, *go = gg + H;
    float *df = di + H, *dg = df + H, *dO = dg + H;
    const VF one = VSET1(1.0f);
    for (; j + VL <= H; j += VL) {
        VF i = VLOAD(gi + j), f = VLOAD(gf + j), g = VLOAD(gg + j), o = VLOAD(go + j), t = VLOAD(tc + j);
        VF dhT = VADD(VLOAD(dh + j), VLOAD(dOut + j));
        VF dcT = VADD(VLOAD(dc + j), VMUL(VMUL(dhT, o), VSUB(one, VMUL(t, t))));
        VSTORE(di + j, VMUL(VMUL(VMUL(dcT, g), i), VSUB(one, i)));
        VSTORE(df + j, VMUL(VMUL(VMUL(dcT, VLOAD(cPrev + j)), f), VSUB(one, f)));
        VSTORE(dg + j, VMUL(VMUL(dcT, i), VSUB(one, VMUL(g, g))));
        VSTORE(dO + j, VMUL(VMUL(VMUL(dhT, t), o), VSUB(one, o)));
        VSTORE(dc + j, VMUL(dcT, f));
    }
    return j;
}

// GRU, between its two activations: keep R_n in hn; n_pre = n_pre + r * R_n (rows of gates r|z|n, of R the same).
static LANES_TARGET ptrdiff_t LANES(gru_new_row)(ptrdiff_t j, const float *gr, float *gn, const float *rn, float *hn,
                                                 ptrdiff_t H) {
    for (; j + VL <= H; j += VL) {
        VF R = VLOAD(rn + j);
        VSTORE(hn + j, R);
        VSTORE(gn + j, VADD(VLOAD(gn + j), VMUL(VLOAD(gr + j), R)));
    }
    return j;
}

// GRU: h = ((1 - z) * n) + (z * hPrev).
static LANES_TARGET ptrdiff_t LANES(gru_output_row)(ptrdiff_t j, const float *gz, const float *gn, const float *hPrev,
                                                    float *h, ptrdiff_t H) {
    const VF one = VSET1(1.0f);
    for (; j + VL <= H; j += VL) {
        VF z = VLOAD(gz + j);
        VSTORE(h + j, VADD(VMUL(VSUB(one, z), VLOAD(gn + j)), VMUL(z, VLOAD(hPrev + j))));
    }
    return j;
}

// GRU backward: dhT = dh + dOut; dn = (dhT * (1 - z)) * (1 - n * n); dz = ((dhT * (hPrev - n)) * z) * (1 - z);
// dr = ((dn * hn) * r) * (1 - r); dP = [dr, dz, dn]; dR = [dr, dz, dn * r]; dh = dhNext = dhT * z.
static LANES_TARGET ptrdiff_t LANES(gru_backward_row)(ptrdiff_t j, const float *gr, const float *hPrev, const float *hn,
                                                      const float *dOut, float *dP, float *dR, float *dh,
                                                      float *dhNext, ptrdiff_t H) {
    const float *gz = gr + H, *gn = gz + H;
    const VF one = VSET1(1.0f);
    for (; j + VL <= H; j += VL) {
        VF r = VLOAD(gr + j), z = VLOAD(gz + j), n = VLOAD(gn + j);
        VF dhT = VADD(VLOAD(dh + j), VLOAD(dOut + j));
        VF dn = VMUL(VMUL(dhT, VSUB(one, z)), VSUB(one, VMUL(n, n)));
        VF dz = VMUL(VMUL(VMUL(dhT, VSUB(VLOAD(hPrev + j), n)), z), VSUB(one, z));
        VF dr = VMUL(VMUL(VMUL(dn, VLOAD(hn + j)), r), VSUB(one, r));
        VSTORE(dP + j, dr);
        VSTORE(dP + H + j, dz);
        VSTORE(dP + 2 * H + j, dn);
        VSTORE(dR + j, dr);
        VSTORE(dR + H + j, dz);
        VSTORE(dR + 2 * H + j, VMUL(dn, r));
        VF direct = VMUL(dhT, z);
        VSTORE(dh + j, direct);
        VSTORE(dhNext + j, direct);
    }
    return j;
}

#undef RK_LANES
