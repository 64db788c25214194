// The LSTM step's element-wise work in Float (rk_cell_rows.h): the loops of Sources/RecurrentKit/Cells/LSTMCell.swift
// sixteen or eight lanes at a time. Only multiplies, adds and subtracts, each rounded on its own as in the Swift loop
// (contraction into fused multiply-adds is off for this file), so every level gives the same bits as that loop. The
// Swift compiler leaves those loops scalar (eleven pointers that may alias), which cost 1-4 % of a training step.
#include "_RecurrentKitKernels.h"

#pragma STDC FP_CONTRACT OFF

static void lstm_cell_row(const float *gi, const float *cPrev, float *c, ptrdiff_t j0, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H;
    for (ptrdiff_t j = j0; j < H; j++) c[j] = gf[j] * cPrev[j] + gi[j] * gg[j];
}

static void lstm_output_row(const float *go, const float *tc, float *h, ptrdiff_t j0, ptrdiff_t H) {
    for (ptrdiff_t j = j0; j < H; j++) h[j] = go[j] * tc[j];
}

static void lstm_backward_row(const float *gi, float *di, const float *cPrev, const float *tc, const float *dh,
                              float *dc, const float *dOut, ptrdiff_t j0, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H, *go = gg + H;
    float *df = di + H, *dg = df + H, *dO = dg + H;
    for (ptrdiff_t j = j0; j < H; j++) {
        float i = gi[j], f = gf[j], g = gg[j], o = go[j], tanhC = tc[j];
        float dhTotal = dh[j] + dOut[j];
        float dcTotal = dc[j] + dhTotal * o * (1 - tanhC * tanhC);
        di[j] = dcTotal * g * i * (1 - i);
        df[j] = dcTotal * cPrev[j] * f * (1 - f);
        dg[j] = dcTotal * i * (1 - g * g);
        dO[j] = dhTotal * tanhC * o * (1 - o);
        dc[j] = dcTotal * f;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx")))

// AVX-512: whole rows in 16 lanes, the tail under a mask.
T512 static void lstm_cell_row_512(const float *gi, const float *cPrev, float *c, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H;
    for (ptrdiff_t j = 0; j < H; j += 16) {
        __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
        __m512 a = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gf + j), _mm512_maskz_loadu_ps(m, cPrev + j));
        __m512 b = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gi + j), _mm512_maskz_loadu_ps(m, gg + j));
        _mm512_mask_storeu_ps(c + j, m, _mm512_add_ps(a, b));
    }
}

T512 static void lstm_output_row_512(const float *go, const float *tc, float *h, ptrdiff_t H) {
    for (ptrdiff_t j = 0; j < H; j += 16) {
        __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
        _mm512_mask_storeu_ps(h + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, go + j), _mm512_maskz_loadu_ps(m, tc + j)));
    }
}

T512 static void lstm_backward_row_512(const float *gi, float *di, const float *cPrev, const float *tc,
                                       const float *dh, float *dc, const float *dOut, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H, *go = gg + H;
    float *df = di + H, *dg = df + H, *dO = dg + H;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (ptrdiff_t j = 0; j < H; j += 16) {
        __mmask16 m = H - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (H - j)) - 1);
        __m512 i = _mm512_maskz_loadu_ps(m, gi + j), f = _mm512_maskz_loadu_ps(m, gf + j);
        __m512 g = _mm512_maskz_loadu_ps(m, gg + j), o = _mm512_maskz_loadu_ps(m, go + j);
        __m512 t = _mm512_maskz_loadu_ps(m, tc + j);
        __m512 dhT = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dh + j), _mm512_maskz_loadu_ps(m, dOut + j));
        __m512 dcT = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dc + j),
                                   _mm512_mul_ps(_mm512_mul_ps(dhT, o), _mm512_sub_ps(one, _mm512_mul_ps(t, t))));
        _mm512_mask_storeu_ps(di + j, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dcT, g), i), _mm512_sub_ps(one, i)));
        __m512 cp = _mm512_maskz_loadu_ps(m, cPrev + j);
        _mm512_mask_storeu_ps(df + j, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dcT, cp), f), _mm512_sub_ps(one, f)));
        _mm512_mask_storeu_ps(dg + j, m, _mm512_mul_ps(_mm512_mul_ps(dcT, i), _mm512_sub_ps(one, _mm512_mul_ps(g, g))));
        _mm512_mask_storeu_ps(dO + j, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dhT, t), o), _mm512_sub_ps(one, o)));
        _mm512_mask_storeu_ps(dc + j, m, _mm512_mul_ps(dcT, f));
    }
}

T512 static ptrdiff_t add_row_512(float *x, const float *row, ptrdiff_t n) {
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_add_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(row + j)));
    return j;
}

T256 static ptrdiff_t add_row_256(float *x, const float *row, ptrdiff_t n) {
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_add_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(row + j)));
    return j;
}

// AVX (eight lanes; the AVX2+FMA level, whose FMA this file does not use): the tail in the scalar loop.
T256 static ptrdiff_t lstm_cell_row_256(const float *gi, const float *cPrev, float *c, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H;
    ptrdiff_t j = 0;
    for (; j + 8 <= H; j += 8) {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(gf + j), _mm256_loadu_ps(cPrev + j));
        __m256 b = _mm256_mul_ps(_mm256_loadu_ps(gi + j), _mm256_loadu_ps(gg + j));
        _mm256_storeu_ps(c + j, _mm256_add_ps(a, b));
    }
    return j;
}

T256 static ptrdiff_t lstm_output_row_256(const float *go, const float *tc, float *h, ptrdiff_t H) {
    ptrdiff_t j = 0;
    for (; j + 8 <= H; j += 8) _mm256_storeu_ps(h + j, _mm256_mul_ps(_mm256_loadu_ps(go + j), _mm256_loadu_ps(tc + j)));
    return j;
}

T256 static ptrdiff_t lstm_backward_row_256(const float *gi, float *di, const float *cPrev, const float *tc,
                                            const float *dh, float *dc, const float *dOut, ptrdiff_t H) {
    const float *gf = gi + H, *gg = gf + H, *go = gg + H;
    float *df = di + H, *dg = df + H, *dO = dg + H;
    const __m256 one = _mm256_set1_ps(1.0f);
    ptrdiff_t j = 0;
    for (; j + 8 <= H; j += 8) {
        __m256 i = _mm256_loadu_ps(gi + j), f = _mm256_loadu_ps(gf + j);
        __m256 g = _mm256_loadu_ps(gg + j), o = _mm256_loadu_ps(go + j), t = _mm256_loadu_ps(tc + j);
        __m256 dhT = _mm256_add_ps(_mm256_loadu_ps(dh + j), _mm256_loadu_ps(dOut + j));
        __m256 dcT = _mm256_add_ps(_mm256_loadu_ps(dc + j),
                                   _mm256_mul_ps(_mm256_mul_ps(dhT, o), _mm256_sub_ps(one, _mm256_mul_ps(t, t))));
        _mm256_storeu_ps(di + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dcT, g), i), _mm256_sub_ps(one, i)));
        __m256 cp = _mm256_loadu_ps(cPrev + j);
        _mm256_storeu_ps(df + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dcT, cp), f), _mm256_sub_ps(one, f)));
        _mm256_storeu_ps(dg + j, _mm256_mul_ps(_mm256_mul_ps(dcT, i), _mm256_sub_ps(one, _mm256_mul_ps(g, g))));
        _mm256_storeu_ps(dO + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dhT, t), o), _mm256_sub_ps(one, o)));
        _mm256_storeu_ps(dc + j, _mm256_mul_ps(dcT, f));
    }
    return j;
}
#endif

void rk_lstm_forward_rows_f32(float *gates, float *c, const float *cPrev, float *tanhCell, float *out, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H) {
#if defined(__x86_64__)
    int level = rk_active_level();
#endif
    for (ptrdiff_t b = begin; b < end; b++) {
        float *gi = gates + b * 4 * H, *go = gi + 3 * H;
        rk_sigmoid_f32(gi, 2 * H);  // i and f are adjacent
        rk_tanh_f32(gi + 2 * H, H);
        rk_sigmoid_f32(go, H);
        const float *cp = cPrev + b * H;
        float *cr = c + b * H, *tc = tanhCell + b * H, *h = out + b * H;
        ptrdiff_t j0 = 0, k0 = 0;  // where the scalar loops take over (H: nothing left)
#if defined(__x86_64__)
        if (level >= RK_LEVEL_AVX512) { lstm_cell_row_512(gi, cp, cr, H); j0 = H; }
        else if (level >= RK_LEVEL_AVX2_FMA) j0 = lstm_cell_row_256(gi, cp, cr, H);
#endif
        lstm_cell_row(gi, cp, cr, j0, H);
        for (ptrdiff_t j = 0; j < H; j++) tc[j] = cr[j];
        rk_tanh_f32(tc, H);
#if defined(__x86_64__)
        if (level >= RK_LEVEL_AVX512) { lstm_output_row_512(go, tc, h, H); k0 = H; }
        else if (level >= RK_LEVEL_AVX2_FMA) k0 = lstm_output_row_256(go, tc, h, H);
#endif
        lstm_output_row(go, tc, h, k0, H);
    }
}

void rk_lstm_backward_rows_f32(const float *gates, float *dGates, const float *cPrev, const float *tanhCell,
                               const float *dh, float *dc, const float *dOut, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t H) {
#if defined(__x86_64__)
    int level = rk_active_level();
#endif
    for (ptrdiff_t b = begin; b < end; b++) {
        const float *gi = gates + b * 4 * H;
        float *di = dGates + b * 4 * H;
        ptrdiff_t r = b * H, j0 = 0;
#if defined(__x86_64__)
        if (level >= RK_LEVEL_AVX512) {
            lstm_backward_row_512(gi, di, cPrev + r, tanhCell + r, dh + r, dc + r, dOut + r, H);
            j0 = H;
        } else if (level >= RK_LEVEL_AVX2_FMA) {
            j0 = lstm_backward_row_256(gi, di, cPrev + r, tanhCell + r, dh + r, dc + r, dOut + r, H);
        }
#endif
        lstm_backward_row(gi, di, cPrev + r, tanhCell + r, dh + r, dc + r, dOut + r, j0, H);
    }
}

typedef struct {
    float *x;
    const float *row;
    ptrdiff_t rows, n;
} add_row_job;

static void add_row_part(void *ctx, int chunk, int nchunks) {
    const add_row_job *j = (const add_row_job *)ctx;
    ptrdiff_t r0 = j->rows * chunk / nchunks, r1 = j->rows * (chunk + 1) / nchunks;
#if defined(__x86_64__)
    int level = rk_active_level();
#endif
    for (ptrdiff_t r = r0; r < r1; r++) {
        float *x = j->x + r * j->n;
        ptrdiff_t k = 0;
#if defined(__x86_64__)
        if (level >= RK_LEVEL_AVX512) k = add_row_512(x, j->row, j->n);
        else if (level >= RK_LEVEL_AVX2_FMA) k = add_row_256(x, j->row, j->n);
#endif
        for (; k < j->n; k++) x[k] = x[k] + j->row[k];
    }
}

// Below this many elements the caller adds alone (the pool's hand-off would cost more than half of it).
#define RK_ADD_ROW_SPLIT_MIN 65536

void rk_add_row_f32(float *x, const float *row, ptrdiff_t rows, ptrdiff_t n) {
    add_row_job job = {x, row, rows, n};
    int chunks = rows < 2 * rk_threads() ? (int)rows : 2 * rk_threads();
    if (rows * n >= RK_ADD_ROW_SPLIT_MIN && chunks > 1) rk_parallel(chunks, add_row_part, &job);
    else add_row_part(&job, 0, 1);
}
