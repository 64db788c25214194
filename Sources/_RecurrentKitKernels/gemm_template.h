// GEMM kernel template: included by gemm_portable.c, gemm_avx2.c and gemm_avx512.c, once per
// element type, after defining the macros below. Not a public header.
//
//   T            element type                 SFX(x)      name suffixing (x ## _s_avx2 ...)
//   TGT          function attributes          OPS_T/OPS_NAME  ops table type and name
//   VT, VL       vector type and lane count   MR, NV      micro-tile MR x (NV*VL)
//   KC_, MC_, NC_                             cache blocking
//   VZERO() VLOAD(p) VSTORE(p,v) VBCAST(x) VFMA(a,b,c)=a*b+c VMUL(a,b)
//   VMASK VMASK_FIRST(n) VLOADM(p,m) VSTOREM(p,m,v)   masked access to the first n lanes
//                                                     (masked-off lanes are never touched)
//   optional TB, TRANSPOSE_BLOCK(src, ls, dst, ld)    TB x TB transpose for pack_t
//   optional DR, DC, VREDUCE(vv), RED_LANE(l)         dot-product kernel: VREDUCE sums each of
//                                                     VL vectors; vector l ends in lane RED_LANE(l)
//   optional GEMV_KU                                  k unrolling of the small-M kernel (default 2)
//
// Determinism: every element of C is produced by the same sequence of operations no matter
// which tile, edge case or thread computes it (full and masked lanes run identical vector ops),
// so results are bit-identical for any thread split.

#define NR (NV * VL)
#define RK_AI __attribute__((always_inline)) inline

static RK_AI TGT void SFX(store_row)(const VT *acc, T *c, int nr, VT va, VT vb, int beta_nz) {
    if (nr == NR) {
        for (int v = 0; v < NV; v++) {
            VT r = VMUL(acc[v], va);
            if (beta_nz) r = VFMA(vb, VLOAD(c + v * VL), r);
            VSTORE(c + v * VL, r);
        }
    } else {
        for (int v = 0; v < NV; v++) {
            int n = nr - v * VL;
            if (n <= 0) break;
            if (n > VL) n = VL;
            VMASK m = VMASK_FIRST(n);
            VT r = VMUL(acc[v], va);
            if (beta_nz) r = VFMA(vb, VLOADM(c + v * VL, m), r);
            VSTOREM(c + v * VL, m, r);
        }
    }
}

// Micro-kernel body. A(i,k) = pa[i*rsa + k*csa]; B(k, 0..NR) = pb[k*ldb ...]; when bmasked,
// only the first nr columns of B are read.
static RK_AI TGT void SFX(kbody)(const int mr, const int bmasked, int nr, ptrdiff_t kc,
                                 const T *restrict pa, ptrdiff_t rsa, ptrdiff_t csa,
                                 const T *restrict pb, ptrdiff_t ldb,
                                 T *restrict c, ptrdiff_t ldc, T alpha, T beta) {
    VT acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = VZERO();
    VMASK bm[NV];
    if (bmasked) {
        for (int v = 0; v < NV; v++) {
            int n = nr - v * VL;
            bm[v] = VMASK_FIRST(n < 0 ? 0 : (n > VL ? VL : n));
        }
    }
    // Prefetches (they change no value): the C tile, which the store at the end reads and writes and which lies in
    // memory no loop keeps in cache, and the B micro-panel 16 k-steps ahead, which streams from L2 (blocking.c). On Zen
    // 4 the float AVX-512 products of an LSTM H1024 training update ran 3-6% faster; AVX2 and portable unchanged.
    for (int i = 0; i < MR; i++)
        if (i < mr) __builtin_prefetch(c + i * ldc, 1, 3), __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
    for (ptrdiff_t k = 0; k < kc; k++) {
        VT b[NV];
        __builtin_prefetch(pb + 16 * ldb, 0, 3);
        __builtin_prefetch(pb + 16 * ldb + NR - 1, 0, 3);
        for (int v = 0; v < NV; v++) b[v] = bmasked ? VLOADM(pb + v * VL, bm[v]) : VLOAD(pb + v * VL);
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                VT a = VBCAST(pa[i * rsa]);
                for (int v = 0; v < NV; v++) acc[i][v] = VFMA(a, b[v], acc[i][v]);
            }
        }
        pa += csa;
        pb += ldb;
    }
    VT va = VBCAST(alpha), vb = VBCAST(beta);
    int bnz = beta != 0;
    for (int i = 0; i < MR; i++)
        if (i < mr) SFX(store_row)(acc[i], c + i * ldc, nr, va, vb, bnz);
}

#define RK_MIN_MR(n) ((n) < MR ? (n) : MR)

static TGT void SFX(kern)(int mr, int nr, ptrdiff_t kc, const T *pa, const T *pb,
                          T *c, ptrdiff_t ldc, T alpha, T beta) {
#define KCASE(n) case n: SFX(kbody)(RK_MIN_MR(n), 0, nr, kc, pa, 1, MR, pb, NR, c, ldc, alpha, beta); break;
    switch (mr) {
        KCASE(1) KCASE(2) KCASE(3) KCASE(4) KCASE(5) KCASE(6) KCASE(7) KCASE(8)
        default: break;
    }
#undef KCASE
}

// One row of C across np consecutive packed B panels (panel p at pb + p*NR*kc, the last one
// nr_last columns wide), four panels at a time for more independent FMA chains. Every element
// gets exactly the operations of kern(1, ...), so results equal the one-panel-at-a-time loop.
static TGT void SFX(kern_row)(ptrdiff_t np, int nr_last, ptrdiff_t kc, const T *pa,
                              const T *pb, T *c, T alpha, T beta) {
    const ptrdiff_t ps = (ptrdiff_t)NR * kc;
    VT va = VBCAST(alpha), vb = VBCAST(beta);
    int bnz = beta != 0;
    ptrdiff_t p = 0;
    for (; p + 4 <= np; p += 4) {
        VT acc[4][NV];
        for (int q = 0; q < 4; q++)
            for (int v = 0; v < NV; v++) acc[q][v] = VZERO();
        const T *b = pb + p * ps;
        for (ptrdiff_t k = 0; k < kc; k++) {
            VT a = VBCAST(pa[k * MR]);
            for (int q = 0; q < 4; q++)
                for (int v = 0; v < NV; v++)
                    acc[q][v] = VFMA(a, VLOAD(b + q * ps + k * NR + v * VL), acc[q][v]);
        }
        for (int q = 0; q < 4; q++) {
            int nr = p + q == np - 1 ? nr_last : NR;
            SFX(store_row)(acc[q], c + (p + q) * NR, nr, va, vb, bnz);
        }
    }
    for (; p < np; p++)
        SFX(kern)(1, p == np - 1 ? nr_last : NR, kc, pa, pb + p * ps, c + p * NR, 0, alpha, beta);
}

#ifndef GEMV_KU
#define GEMV_KU 2
#endif
// gemv_n for one row (m == 1): up to 8 vectors of columns at a time, their sums kept in registers
// over all of K. Each element of C gets the operations of the general loop below (an FMA chain
// over k from zero, then alpha and beta), so the results are the same bits. nvb vectors, the last
// one masked to its first `last` lanes when `masked`.
static RK_AI TGT void SFX(gemv_n1_block)(const int nvb, const int masked, int last, ptrdiff_t K,
                                         const T *restrict a, ptrdiff_t csa, const T *restrict b,
                                         ptrdiff_t ldb, T *restrict c, T alpha, T beta) {
    VT acc[8];
    VMASK lm = VMASK_FIRST(masked ? last : VL);
    for (int v = 0; v < nvb; v++) acc[v] = VZERO();
    for (ptrdiff_t k = 0; k < K; k++) {
        VT av = VBCAST(a[k * csa]);
        const T *bk = b + k * ldb;
        for (int v = 0; v < nvb; v++)
            acc[v] = VFMA(av, masked && v == nvb - 1 ? VLOADM(bk + v * VL, lm) : VLOAD(bk + v * VL), acc[v]);
    }
    VT va = VBCAST(alpha), vb = VBCAST(beta);
    int bnz = beta != 0;
    for (int v = 0; v < nvb; v++) {
        VT r = VMUL(acc[v], va);
        if (masked && v == nvb - 1) {
            if (bnz) r = VFMA(vb, VLOADM(c + v * VL, lm), r);
            VSTOREM(c + v * VL, lm, r);
        } else {
            if (bnz) r = VFMA(vb, VLOAD(c + v * VL), r);
            VSTORE(c + v * VL, r);
        }
    }
}

static TGT void SFX(gemv_n1)(ptrdiff_t n, ptrdiff_t K, const T *a, ptrdiff_t csa, const T *b,
                             ptrdiff_t ldb, T *c, T alpha, T beta) {
    ptrdiff_t j = 0;
    for (; j + 8 * VL <= n; j += 8 * VL) SFX(gemv_n1_block)(8, 0, VL, K, a, csa, b + j, ldb, c + j, alpha, beta);
    if (j == n) return;
    int nvec = (int)((n - j + VL - 1) / VL), last = (int)(n - j) - (nvec - 1) * VL;
    b += j;
    c += j;
    switch (nvec) { // the last vector masked (possibly to all lanes)
    case 1: SFX(gemv_n1_block)(1, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 2: SFX(gemv_n1_block)(2, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 3: SFX(gemv_n1_block)(3, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 4: SFX(gemv_n1_block)(4, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 5: SFX(gemv_n1_block)(5, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 6: SFX(gemv_n1_block)(6, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    case 7: SFX(gemv_n1_block)(7, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    default: SFX(gemv_n1_block)(8, 1, last, K, a, csa, b, ldb, c, alpha, beta); break;
    }
}

// Small-M A * B without packing (M <= 4): C[i, 0:n] = alpha * sum_k A(i,k) B[k, 0:n] + beta C,
// A(i,k) = a[i*rsa + k*csa]. Streams whole rows of B (prefetch- and TLB-friendly) and keeps the
// m x n accumulators in the scratch y (n <= RK_GEMV_NB), so each element of C is the plain
// sequential sum over k, whatever the column range. y holds m rows of n + 32 elements.
static TGT void SFX(gemv_n)(int m, ptrdiff_t n, ptrdiff_t K, const T *a, ptrdiff_t rsa,
                            ptrdiff_t csa, const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc,
                            T alpha, T beta, T *restrict y) {
    if (m == 1) {
        SFX(gemv_n1)(n, K, a, csa, b, ldb, c, alpha, beta);
        return;
    }
    const ptrdiff_t nv = n / VL;
    const int tail = (int)(n - nv * VL);
    const VMASK tm = VMASK_FIRST(tail);
    const ptrdiff_t ys = n + 32; // row stride of y, off 4 KiB multiples (no 4K aliasing)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)m * ys; i++) y[i] = 0;
    ptrdiff_t k = 0;
    for (; k + GEMV_KU <= K; k += GEMV_KU) {
        VT av[4][GEMV_KU];
        for (int i = 0; i < 4; i++)
            if (i < m)
                for (int u = 0; u < GEMV_KU; u++) av[i][u] = VBCAST(a[i * rsa + (k + u) * csa]);
        const T *bk = b + k * ldb;
        for (ptrdiff_t v = 0; v <= nv; v++) {
            if (v == nv && tail == 0) break;
            VT bv[GEMV_KU];
            for (int u = 0; u < GEMV_KU; u++)
                bv[u] = v < nv ? VLOAD(bk + u * ldb + v * VL) : VLOADM(bk + u * ldb + v * VL, tm);
            for (int i = 0; i < 4; i++) {
                if (i < m) {
                    T *yp = y + i * ys + v * VL;
                    VT acc = v < nv ? VLOAD(yp) : VLOADM(yp, tm);
                    for (int u = 0; u < GEMV_KU; u++) acc = VFMA(av[i][u], bv[u], acc);
                    if (v < nv) VSTORE(yp, acc);
                    else VSTOREM(yp, tm, acc);
                }
            }
        }
    }
    for (; k < K; k++) {
        const T *bk = b + k * ldb;
        for (int i = 0; i < m; i++) {
            VT a0 = VBCAST(a[i * rsa + k * csa]);
            T *yi = y + i * ys;
            for (ptrdiff_t v = 0; v < nv; v++) VSTORE(yi + v * VL, VFMA(a0, VLOAD(bk + v * VL), VLOAD(yi + v * VL)));
            if (tail) VSTOREM(yi + nv * VL, tm, VFMA(a0, VLOADM(bk + nv * VL, tm), VLOADM(yi + nv * VL, tm)));
        }
    }
    VT va = VBCAST(alpha), vb = VBCAST(beta);
    int bnz = beta != 0;
    for (int i = 0; i < m; i++) {
        const T *yi = y + i * ys;
        T *ci = c + i * ldc;
        for (ptrdiff_t v = 0; v < nv; v++) {
            VT r = VMUL(VLOAD(yi + v * VL), va);
            if (bnz) r = VFMA(vb, VLOAD(ci + v * VL), r);
            VSTORE(ci + v * VL, r);
        }
        if (tail) {
            VT r = VMUL(VLOADM(yi + nv * VL, tm), va);
            if (bnz) r = VFMA(vb, VLOADM(ci + nv * VL, tm), r);
            VSTOREM(ci + nv * VL, tm, r);
        }
    }
}

static TGT void SFX(pack_n)(T *restrict dst, const T *restrict src, ptrdiff_t ld, ptrdiff_t kc,
                            int w, int W) {
    if (w == NR && W == NR) {
        for (ptrdiff_t k = 0; k < kc; k++)
            for (int v = 0; v < NV; v++) VSTORE(dst + k * NR + v * VL, VLOAD(src + k * ld + v * VL));
        return;
    }
    if (w == MR && W == MR) { // fixed-width copy (a variable-length loop becomes a memcpy call)
        for (ptrdiff_t k = 0; k < kc; k++)
            for (int r = 0; r < MR; r++) dst[k * MR + r] = src[k * ld + r];
        return;
    }
    for (ptrdiff_t k = 0; k < kc; k++) {
        const T *s = src + k * ld;
        T *d = dst + k * W;
        for (int r = 0; r < w; r++) d[r] = s[r];
        for (int r = w; r < W; r++) d[r] = 0;
    }
}

static TGT void SFX(pack_t)(T *restrict dst, const T *restrict src, ptrdiff_t ld, ptrdiff_t kc,
                            int w, int W) {
    int r = 0;
#ifdef TB
    for (; r + TB <= w; r += TB) {
        ptrdiff_t k = 0;
        for (; k + TB <= kc; k += TB) TRANSPOSE_BLOCK(src + r * ld + k, ld, dst + k * W + r, W);
        for (; k < kc; k++)
            for (int rr = 0; rr < TB; rr++) dst[k * W + r + rr] = src[(r + rr) * ld + k];
    }
#endif
    for (; r < w; r++) {
        const T *s = src + r * ld;
        for (ptrdiff_t k = 0; k < kc; k++) dst[k * W + r] = s[k];
    }
    if (w < W)
        for (ptrdiff_t k = 0; k < kc; k++)
            for (int rr = w; rr < W; rr++) dst[k * W + rr] = 0;
}

#ifdef DR
// Dot-product tile: C[i][j] = alpha * sum_k a[i*lda + k] * b[j*ldb + k] + beta * C[i][j].
static RK_AI TGT void SFX(dbody)(const int mr, const int nr, ptrdiff_t K,
                                 const T *restrict a, ptrdiff_t lda,
                                 const T *restrict b, ptrdiff_t ldb,
                                 T *restrict c, ptrdiff_t ldc, T alpha, T beta) {
    VT acc[DR][DC];
    for (int i = 0; i < DR; i++)
        for (int j = 0; j < DC; j++) acc[i][j] = VZERO();
    ptrdiff_t k = 0;
    for (; k + VL <= K; k += VL) {
        VT bv[DC];
        for (int j = 0; j < DC; j++)
            if (j < nr) bv[j] = VLOAD(b + j * ldb + k);
        for (int i = 0; i < DR; i++) {
            if (i < mr) {
                VT av = VLOAD(a + i * lda + k);
                for (int j = 0; j < DC; j++)
                    if (j < nr) acc[i][j] = VFMA(av, bv[j], acc[i][j]);
            }
        }
    }
    if (k < K) {
        VMASK m = VMASK_FIRST((int)(K - k));
        VT bv[DC];
        for (int j = 0; j < DC; j++)
            if (j < nr) bv[j] = VLOADM(b + j * ldb + k, m);
        for (int i = 0; i < DR; i++) {
            if (i < mr) {
                VT av = VLOADM(a + i * lda + k, m);
                for (int j = 0; j < DC; j++)
                    if (j < nr) acc[i][j] = VFMA(av, bv[j], acc[i][j]);
            }
        }
    }
    enum { NF = DR * DC, NG = (NF + VL - 1) / VL };
    VT va = VBCAST(alpha), vb = VBCAST(beta);
    int bnz = beta != 0;
    for (int g = 0; g < NG; g++) {
        VT vv[VL];
        for (int l = 0; l < VL; l++) {
            int f = g * VL + l;
            vv[l] = (f < NF && f / DC < mr && f % DC < nr) ? acc[f / DC][f % DC] : VZERO();
        }
        VT s = VMUL(VREDUCE(vv), va);
        T buf[VL] __attribute__((aligned(64)));
        if (bnz) {
            for (int l = 0; l < VL; l++) {
                int f = g * VL + l;
                buf[RED_LANE(l)] = (f < NF && f / DC < mr && f % DC < nr) ? c[(f / DC) * ldc + f % DC] : 0;
            }
            s = VFMA(vb, VLOAD(buf), s);
        }
        VSTORE(buf, s);
        for (int l = 0; l < VL; l++) {
            int f = g * VL + l;
            if (f < NF && f / DC < mr && f % DC < nr) c[(f / DC) * ldc + f % DC] = buf[RED_LANE(l)];
        }
    }
}

static TGT void SFX(dot)(int mr, int nr, ptrdiff_t K, const T *a, ptrdiff_t lda, const T *b,
                         ptrdiff_t ldb, T *c, ptrdiff_t ldc, T alpha, T beta) {
    if (mr == DR && nr == DC) SFX(dbody)(DR, DC, K, a, lda, b, ldb, c, ldc, alpha, beta);
    else if (mr == 1 && nr == DC) SFX(dbody)(1, DC, K, a, lda, b, ldb, c, ldc, alpha, beta);
    else SFX(dbody)(mr, nr, K, a, lda, b, ldb, c, ldc, alpha, beta);
}
#define RK_DOT_ENTRY DR, DC, SFX(dot)
#else
#define RK_DOT_ENTRY 0, 0, 0
#endif

const OPS_T OPS_NAME = {
    MR, NR, KC_, MC_, NC_,
    SFX(kern), SFX(kern_row), SFX(gemv_n), SFX(pack_n), SFX(pack_t),
    RK_DOT_ENTRY
};

#undef RK_DOT_ENTRY
#undef GEMV_KU
#undef RK_MIN_MR
#undef NR
#undef RK_AI
