// A self-test of the C kernels (Sources/_RecurrentKitKernels) as one program, for the CPUs the Swift tests cannot run
// on here: Scripts/check-aarch64-kernels.sh builds it with clang for aarch64 (static) and runs it under qemu-aarch64,
// and builds it for this machine to run at every instruction-set level. Each product is checked against a plain loop
// in double, each element-wise kernel against its documented formula bit for bit (this file is compiled with
// -ffp-contract=off, as the kernels compile their loops), and every product again at 1 and 2 threads, bit for bit.
// Prints one line per check and a summary; exits 1 on any failure.
#include "_RecurrentKitKernels.h"
#include "rk_activations.h"
#include "rk_blocking.h"
#include "rk_cell_rows.h"
#include "rk_gemm_bf16.h"
#include "rk_gemv.h"
#include "rk_optimizer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0, checks = 0;
static uint64_t lcg = 1;

static float value(void) {  // deterministic, in (-1, 1)
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(lcg >> 40) / (double)(1 << 24) * 2 - 1);
}
static float *floats(ptrdiff_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (ptrdiff_t i = 0; i < n; i++) p[i] = value();
    return p;
}
static void check(int ok, const char *what, const char *detail) {
    checks++;
    if (!ok) { failures++; printf("FAIL %s: %s\n", what, detail); }
}
static int same_bits(const float *a, const float *b, ptrdiff_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }
static float bf16_round(float x) {  // round to nearest even on the upper 16 bits (finite values)
    uint32_t u; memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

// C = alpha op(A) op(B) + beta C in double, op(X) = X or X^T; `bf16` rounds the operands to bfloat16 first.
static void reference(int ta, int tb, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                      const float *B, ptrdiff_t ldb, float beta, const float *C0, float *C, ptrdiff_t ldc, int bf16) {
    for (ptrdiff_t i = 0; i < M; i++)
        for (ptrdiff_t j = 0; j < N; j++) {
            double s = 0;
            for (ptrdiff_t k = 0; k < K; k++) {
                float a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[j * ldb + k] : B[k * ldb + j];
                if (bf16) { a = bf16_round(a); b = bf16_round(b); }
                s += (double)a * b;
            }
            C[i * ldc + j] = (float)(alpha * s + (beta != 0 ? (double)beta * C0[i * ldc + j] : 0));
        }
}
static double worst_error(const float *C, const float *R, ptrdiff_t M, ptrdiff_t N, ptrdiff_t ldc, ptrdiff_t K) {
    double worst = 0;
    for (ptrdiff_t i = 0; i < M; i++)
        for (ptrdiff_t j = 0; j < N; j++) {
            double e = fabs((double)C[i * ldc + j] - R[i * ldc + j]) / (1 + fabs(R[i * ldc + j])) / (double)(K + 1);
            if (!(e <= worst)) worst = e;  // NaN counts as the worst
        }
    return worst;
}

static void products(void) {
    const ptrdiff_t sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 70, 130}, {130, 96, 300}, {40, 520, 1100}};
    for (int s = 0; s < 6; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bf16 = 0; bf16 < 2; bf16++) {
                    ptrdiff_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ldc = N + 3;
                    ptrdiff_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2;
                    float *A = floats((ta ? K : M) * lda), *B = floats((tb ? N : K) * ldb), *C0 = floats(M * ldc);
                    float *C = malloc((size_t)(M * ldc) * 4), *C2 = malloc((size_t)(M * ldc) * 4);
                    float *R = malloc((size_t)(M * ldc) * 4);
                    memcpy(R, C0, (size_t)(M * ldc) * 4);
                    reference(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, C0, R, ldc, bf16);
                    char what[160];
                    snprintf(what, sizeof what, "%s %c%c M%td N%td K%td", bf16 ? "rk_sgemm_bf16" : "rk_sgemm",
                             ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
                    for (int threads = 1; threads <= 2; threads++) {
                        rk_set_threads(threads);
                        float *out = threads == 1 ? C : C2;
                        memcpy(out, C0, (size_t)(M * ldc) * 4);
                        if (bf16) rk_sgemm_bf16(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, out, ldc);
                        else rk_sgemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, out, ldc);
                    }
                    char detail[96];
                    double e = worst_error(C, R, M, N, ldc, K);
                    snprintf(detail, sizeof detail, "error %.3g per term against double", e);
                    check(e < (bf16 ? 1e-6 : 1e-7), what, detail);
                    check(same_bits(C, C2, M * ldc), what, "1 and 2 threads differ");
                    free(A); free(B); free(C0); free(C); free(C2); free(R);
                }
    // Double: rk_dgemm against the double loop (sums of at most 300 terms in (-1, 1)).
    {
        ptrdiff_t M = 37, N = 45, K = 300;
        double *A = malloc(M * K * 8), *B = malloc(K * N * 8), *C = calloc(M * N, 8);
        for (ptrdiff_t i = 0; i < M * K; i++) A[i] = value();
        for (ptrdiff_t i = 0; i < K * N; i++) B[i] = value();
        rk_dgemm(0, 0, M, N, K, 1, A, K, B, N, 0, C, N);
        double worst = 0;
        for (ptrdiff_t i = 0; i < M; i++)
            for (ptrdiff_t j = 0; j < N; j++) {
                double s = 0;
                for (ptrdiff_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
                if (!(fabs(s - C[i * N + j]) <= worst)) worst = fabs(s - C[i * N + j]);
            }
        check(worst < 1e-12, "rk_dgemm NN M37 N45 K300", "error above 1e-12");
        free(A); free(B); free(C);
    }
    // The packed-B product and the pair are the same operations as rk_sgemm: bit for bit.
    {
        ptrdiff_t M = 70, N = 130, K = 260, N2 = 50;
        float *A = floats(K * M), *B = floats(K * N), *B2 = floats(K * N2);
        float *C = floats(M * N), *Cp = malloc(M * N * 4), *D = floats(M * N2), *Dp = malloc(M * N2 * 4);
        memcpy(Cp, C, M * N * 4); memcpy(Dp, D, M * N2 * 4);
        void *packed = rk_alloc(rk_sgemm_pack_b_size(K, N));
        rk_sgemm_pack_b(0, K, N, B, N, packed);
        float *E = malloc(M * N * 4);
        memcpy(E, C, M * N * 4);
        rk_sgemm(0, 0, M, N, K, 1, A, K, B, N, 1, E, N);
        rk_sgemm_packed(0, M, N, K, 1, A, K, packed, 1, Cp, N);
        check(same_bits(E, Cp, M * N), "rk_sgemm_packed", "differs from rk_sgemm");
        // pair: C1 += A^T B1 and C2 += A^T B2 with A (K, M).
        memcpy(Cp, C, M * N * 4);
        rk_sgemm(1, 0, M, N, K, 1, A, M, B, N, 1, C, N);
        rk_sgemm(1, 0, M, N2, K, 1, A, M, B2, N2, 1, D, N2);
        rk_sgemm_tn_pair(M, K, A, M, N, B, N, Cp, N, N2, B2, N2, Dp, N2);
        check(same_bits(C, Cp, M * N) && same_bits(D, Dp, M * N2), "rk_sgemm_tn_pair", "differs from two rk_sgemm");
        rk_free(packed);
        free(A); free(B); free(B2); free(C); free(Cp); free(D); free(Dp); free(E);
    }
    // Matrix-vector products of generation: f32, bf16 weights, int8 weights.
    {
        ptrdiff_t rows = 77, cols = 301;
        float *w = floats(rows * cols), *x = floats(cols), *y = malloc(rows * 4);
        uint16_t *wb = malloc(rows * cols * 2);
        int8_t *wq = malloc(rows * cols);
        float *scales = malloc(rows * 4);
        int32_t *sums = malloc(rows * 4);
        rk_gemv_f32(rows, cols, w, cols, x, 1, 0, y);
        double e = 0;
        for (ptrdiff_t i = 0; i < rows; i++) {
            double s = 0;
            for (ptrdiff_t k = 0; k < cols; k++) s += (double)w[i * cols + k] * x[k];
            if (!(fabs(s - y[i]) <= e)) e = fabs(s - y[i]);
        }
        check(e < 1e-4, "rk_gemv_f32", "error above 1e-4");
        rk_f32_to_bf16(w, wb, rows * cols);
        rk_gemv_bf16(rows, cols, wb, cols, x, 0, y);
        e = 0;
        for (ptrdiff_t i = 0; i < rows; i++) {
            double s = 0;
            for (ptrdiff_t k = 0; k < cols; k++) s += (double)bf16_round(w[i * cols + k]) * x[k];
            if (!(fabs(s - y[i]) <= e)) e = fabs(s - y[i]);
        }
        check(e < 1e-4, "rk_gemv_bf16", "error above 1e-4 against the bf16-rounded weights");
        check(rk_quantize_i8_rows(w, wq, scales, sums, rows, cols) == 0, "rk_quantize_i8_rows", "refused finite rows");
        rk_gemv_i8(rows, cols, wq, cols, scales, sums, x, 0, y);
        // Within the bound of two roundings to int8 steps: |w x - w' x'| <= |w| sx/2 + (|x| + sx/2) sw/2 per term.
        double sx = 0;
        for (ptrdiff_t k = 0; k < cols; k++) sx = fmax(sx, fabs(x[k]) / 127);
        int within = 1;
        for (ptrdiff_t i = 0; i < rows; i++) {
            double s = 0, bound = 1e-5;
            for (ptrdiff_t k = 0; k < cols; k++) {
                s += (double)w[i * cols + k] * x[k];
                bound += fabs(w[i * cols + k]) * sx / 2 + (fabs(x[k]) + sx / 2) * scales[i] / 2;
            }
            if (!(fabs(s - y[i]) <= bound)) within = 0;
        }
        check(within, "rk_gemv_i8", "error above the bound of int8 rounding");
        free(w); free(x); free(y); free(wb); free(wq); free(scales); free(sums);
    }
}

static float sigmoid_of(float x) { float y = x; rk_sigmoid_f32(&y, 1); return y; }
static float tanh_of(float x) { float y = x; rk_tanh_f32(&y, 1); return y; }

static void element_wise(void) {
    // Activations: within 2 ulp-ish of libm, and the same value whether called on one element or a row.
    {
        ptrdiff_t n = 1000;
        float *x = floats(n), *t = malloc(n * 4), *s = malloc(n * 4);
        for (ptrdiff_t i = 0; i < n; i++) x[i] *= 12;
        memcpy(t, x, n * 4); memcpy(s, x, n * 4);
        rk_tanh_f32(t, n); rk_sigmoid_f32(s, n);
        double et = 0, es = 0;
        int rowwise = 1;
        for (ptrdiff_t i = 0; i < n; i++) {
            double dt = fabs(t[i] - tanh((double)x[i])), ds = fabs(s[i] - 1 / (1 + exp(-(double)x[i])));
            if (!(dt <= et)) et = dt;
            if (!(ds <= es)) es = ds;
            if (t[i] != tanh_of(x[i]) || s[i] != sigmoid_of(x[i])) rowwise = 0;
        }
        check(et < 1e-6 && es < 1e-6, "rk_tanh_f32 / rk_sigmoid_f32", "error above 1e-6 against libm in double");
        check(rowwise, "rk_tanh_f32 / rk_sigmoid_f32", "a row and single elements differ");
        free(x); free(t); free(s);
    }
    const ptrdiff_t widths[] = {1, 5, 8, 17, 40};
    for (int w = 0; w < 5; w++) {
        ptrdiff_t H = widths[w], B = 3;
        char what[64];
        // LSTM forward and backward against rk_cell_rows.h's formulas.
        float *g = floats(B * 4 * H), *cp = floats(B * H), *c = malloc(B * H * 4), *tc = malloc(B * H * 4);
        float *h = malloc(B * H * 4), *gr = malloc(B * 4 * H * 4);
        memcpy(gr, g, B * 4 * H * 4);
        rk_lstm_forward_rows_f32(g, c, cp, tc, h, 0, B, H);
        int ok = 1;
        for (ptrdiff_t b = 0; b < B; b++) {
            float *q = gr + b * 4 * H;
            rk_sigmoid_f32(q, 2 * H); rk_tanh_f32(q + 2 * H, H); rk_sigmoid_f32(q + 3 * H, H);
            for (ptrdiff_t j = 0; j < H; j++) {
                float cc = q[H + j] * cp[b * H + j] + q[j] * q[2 * H + j];
                float t = tanh_of(cc);
                if (cc != c[b * H + j] || t != tc[b * H + j] || q[3 * H + j] * t != h[b * H + j]) ok = 0;
            }
        }
        ok = ok && same_bits(g, gr, B * 4 * H);
        snprintf(what, sizeof what, "rk_lstm_forward_rows_f32 H%td", H);
        check(ok, what, "differs from the formula");
        float *dh = floats(B * H), *dc = floats(B * H), *dOut = floats(B * H), *dg = malloc(B * 4 * H * 4);
        float *dc0 = malloc(B * H * 4);
        memcpy(dc0, dc, B * H * 4);
        rk_lstm_backward_rows_f32(g, dg, cp, tc, dh, dc, dOut, 0, B, H);
        ok = 1;
        for (ptrdiff_t b = 0; b < B; b++)
            for (ptrdiff_t j = 0; j < H; j++) {
                const float *q = g + b * 4 * H, *d = dg + b * 4 * H;
                ptrdiff_t r = b * H + j;
                float i = q[j], f = q[H + j], gg = q[2 * H + j], o = q[3 * H + j], t = tc[r];
                float dhT = dh[r] + dOut[r], dcT = dc0[r] + dhT * o * (1 - t * t);
                if (d[j] != dcT * gg * i * (1 - i) || d[H + j] != dcT * cp[r] * f * (1 - f) ||
                    d[2 * H + j] != dcT * i * (1 - gg * gg) || d[3 * H + j] != dhT * t * o * (1 - o) || dc[r] != dcT * f)
                    ok = 0;
            }
        snprintf(what, sizeof what, "rk_lstm_backward_rows_f32 H%td", H);
        check(ok, what, "differs from the formula");
        // GRU forward and backward.
        float *G = floats(B * 3 * H), *R = floats(B * 3 * H), *hp = floats(B * H), *hn = malloc(B * H * 4);
        float *Gr = malloc(B * 3 * H * 4);
        memcpy(Gr, G, B * 3 * H * 4);
        rk_gru_forward_rows_f32(G, R, hn, h, hp, 0, B, H);
        ok = 1;
        for (ptrdiff_t b = 0; b < B; b++) {
            float *q = Gr + b * 3 * H;
            const float *rr = R + b * 3 * H;
            for (ptrdiff_t j = 0; j < 2 * H; j++) q[j] = q[j] + rr[j];
            rk_sigmoid_f32(q, 2 * H);
            for (ptrdiff_t j = 0; j < H; j++) q[2 * H + j] = q[2 * H + j] + q[j] * rr[2 * H + j];
            rk_tanh_f32(q + 2 * H, H);
            for (ptrdiff_t j = 0; j < H; j++) {
                float z = q[H + j];
                if (hn[b * H + j] != rr[2 * H + j] || h[b * H + j] != (1 - z) * q[2 * H + j] + z * hp[b * H + j]) ok = 0;
            }
        }
        ok = ok && same_bits(G, Gr, B * 3 * H);
        snprintf(what, sizeof what, "rk_gru_forward_rows_f32 H%td", H);
        check(ok, what, "differs from the formula");
        float *dP = malloc(B * 3 * H * 4), *dR = malloc(B * 3 * H * 4), *dhn = malloc(B * H * 4);
        float *dh0 = malloc(B * H * 4);
        memcpy(dh0, dh, B * H * 4);
        rk_gru_backward_rows_f32(G, hp, hn, dOut, dP, dR, dh, dhn, 0, B, H);
        ok = 1;
        for (ptrdiff_t b = 0; b < B; b++)
            for (ptrdiff_t j = 0; j < H; j++) {
                const float *q = G + b * 3 * H;
                ptrdiff_t r = b * H + j, k = b * 3 * H + j;
                float rg = q[j], z = q[H + j], n = q[2 * H + j], dhT = dh0[r] + dOut[r];
                float dn = dhT * (1 - z) * (1 - n * n), dz = dhT * (hp[r] - n) * z * (1 - z);
                float dr = dn * hn[r] * rg * (1 - rg);
                if (dP[k] != dr || dP[k + H] != dz || dP[k + 2 * H] != dn || dR[k] != dr || dR[k + H] != dz ||
                    dR[k + 2 * H] != dn * rg || dh[r] != dhT * z || dhn[r] != dhT * z)
                    ok = 0;
            }
        snprintf(what, sizeof what, "rk_gru_backward_rows_f32 H%td", H);
        check(ok, what, "differs from the formula");
        free(g); free(cp); free(c); free(tc); free(h); free(gr); free(dh); free(dc); free(dOut); free(dg); free(dc0);
        free(G); free(R); free(hp); free(hn); free(Gr); free(dP); free(dR); free(dhn); free(dh0);
    }
    // Bias rows and Adam (large enough to split over the pool at 2 threads).
    for (int threads = 1; threads <= 2; threads++) {
        rk_set_threads(threads);
        ptrdiff_t rows = 70, n = 1030, N = 70001;
        float *x = floats(rows * n), *row = floats(n), *e = malloc(rows * n * 4);
        for (ptrdiff_t i = 0; i < rows * n; i++) e[i] = x[i] + row[i % n];
        rk_add_row_f32(x, row, rows, n);
        check(same_bits(x, e, rows * n), threads == 1 ? "rk_add_row_f32, 1 thread" : "rk_add_row_f32, 2 threads",
              "differs from the formula");
        float *p = floats(N), *gr = floats(N), *m = floats(N), *v = floats(N);
        for (ptrdiff_t i = 0; i < N; i++) v[i] = fabsf(v[i]);
        float *pe = malloc(N * 4), *me = malloc(N * 4), *ve = malloc(N * 4);
        for (int mode = 0; mode < 3; mode++) {
            rk_adam_f32_args a = {0.1f, 0.999f, 0.001f, 0.3f, 1e-8f, 0.01f, 0.05f, 0.9995f, mode};
            memcpy(pe, p, N * 4); memcpy(me, m, N * 4); memcpy(ve, v, N * 4);
            for (ptrdiff_t i = 0; i < N; i++) {
                float grad = gr[i];
                if (mode == 2) pe[i] = pe[i] * a.decay;
                else if (mode == 1) grad = grad + a.wd * pe[i];
                me[i] = me[i] + (grad - me[i]) * a.b1;
                ve[i] = ve[i] * a.b2 + a.oneMinusB2 * grad * grad;
                pe[i] = pe[i] - a.stepSize * (me[i] / (sqrtf(ve[i]) / a.bc2 + a.eps));
            }
            rk_adam_f32(p, gr, m, v, N, &a);
            char what[64];
            snprintf(what, sizeof what, "rk_adam_f32 decay mode %d, %d thread(s)", mode, threads);
            check(same_bits(p, pe, N) && same_bits(m, me, N) && same_bits(v, ve, N), what, "differs from the formula");
        }
        free(x); free(row); free(e); free(p); free(gr); free(m); free(v); free(pe); free(me); free(ve);
    }
}

int main(void) {
    rk_cache_info caches = rk_detected_caches();
    int top = rk_detected_level();
    for (int level = 0; level <= top; level++) {
        rk_set_level(level);
        rk_block_sizes f = rk_blocking(level, 4);
        printf("level %d of %d (%s): caches L1d %lld L2 %lld L3 %lld bytes; float blocking mr %d nr %d kc %d mc %d nc %d\n",
               level, top, rk_cpu_name(), (long long)caches.l1d.bytes, (long long)caches.l2.bytes,
               (long long)caches.l3.bytes, f.mr, f.nr, f.kc, f.mc, f.nc);
        check(f.mr > 0 && f.nr > 0 && f.kc > 0 && f.mc >= f.mr && f.nc >= f.nr && f.mc % f.mr == 0 && f.nc % f.nr == 0,
              "rk_blocking", "block sizes out of range");
        int before = failures;
        products();
        element_wise();
        printf("level %d: %s\n", level, failures == before ? "ok" : "FAILED");
    }
    printf("kernel self-test: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
