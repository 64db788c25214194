// GEMM driver template, included twice by gemm.c (float, double). Not a public header.
// Expects: T, OPS (ops table type), P(x) (name prefixing: x ## _s / x ## _d),
// PUBLIC_GEMM, PUBLIC_PACK_SIZE, PUBLIC_PACK, PUBLIC_PACKED (public function names), OPS_FOR_LEVEL(level);
// optional GEMV_ROW (matrix-vector kernel with the signature of rk_gemv_f32 for PUBLIC_GEMM with M == 1, op(B) = B^T).

enum { P(PATH_PACKED), P(PATH_DIRECT), P(PATH_DOT), P(PATH_PREPACKED_GENERIC) };

typedef struct {
    const OPS *o;
    int kc, mc, nc; // blocking of this product (rk_blocking at its level)
    int path, transA, transB;
    ptrdiff_t M, N, K;
    T alpha, beta;
    const T *A;
    ptrdiff_t lda;
    const T *B; // unpacked B, or NULL when PB is used
    ptrdiff_t ldb;
    const T *PB; // pre-packed B data (layout of rk_*gemm_pack_b)
    int pb_nr, pb_kc;
    T *C;
    ptrdiff_t ldc;
    // A pair of products sharing A (PUBLIC_GEMM_PAIR): columns from n1 on are those of B2 (K x (N - n1), not
    // transposed) and C2. NULL for one product.
    const T *B2;
    T *C2;
    ptrdiff_t n1, ldb2, ldc2;
    int split_m;    // split the work over rows of C (1) or columns (0)
    ptrdiff_t unit; // split granularity
} P(job);

// Thread-local packing buffers, grown on demand (64-byte aligned).
static _Thread_local T *P(tls_a), *P(tls_b);
static _Thread_local size_t P(tls_a_n), P(tls_b_n);

// Every first allocation is at least the largest blocking any level uses (MC*KC for A, KC*NC for B: rk_tls_floor), so
// a buffer never grows later because its thread happened to run a larger product than before: which thread runs which
// chunk depends on timing, and growth then would make heap allocations (counted by Scripts/check-allocations.sh)
// depend on timing too.
static T *P(buffer)(T **buf, size_t *cap, size_t n) {
    if (*cap < n) {
        size_t floor = rk_tls_floor((int)sizeof(T), buf != &P(tls_a));
        if (n < floor) n = floor;
        free(*buf);
        void *p = NULL;
        if (posix_memalign(&p, 64, n * sizeof(T) + 64) != 0) {
            fprintf(stderr, "_RecurrentKitKernels: out of memory (%zu bytes)\n", n * sizeof(T));
            abort();
        }
        *buf = (T *)p;
        *cap = n;
    }
    return *buf;
}

// Element (k, j) of a pre-packed B with panel width nr and depth blocking kc.
static inline T P(packed_at)(const T *pb, ptrdiff_t K, ptrdiff_t N, int nr, int kc, ptrdiff_t k,
                             ptrdiff_t j) {
    ptrdiff_t npad = (N + nr - 1) / nr * nr;
    ptrdiff_t pc = k / kc * kc;
    ptrdiff_t kcb = K - pc < kc ? K - pc : kc;
    return pb[pc * npad + (j / nr) * nr * kcb + (k - pc) * nr + j % nr];
}

// Packs the KC x w panel of op(B) at depth pc and column j (of B, or of B2 past n1; a panel never straddles n1).
static inline void P(pack_b_panel)(const P(job) *jb, T *dst, ptrdiff_t pc, ptrdiff_t j, ptrdiff_t kc, int w, int NR) {
    const OPS *o = jb->o;
    if (jb->B2 && j >= jb->n1) o->pack_n(dst, jb->B2 + pc * jb->ldb2 + (j - jb->n1), jb->ldb2, kc, w, NR);
    else if (jb->transB) o->pack_t(dst, jb->B + j * jb->ldb + pc, jb->ldb, kc, w, NR);
    else o->pack_n(dst, jb->B + pc * jb->ldb + j, jb->ldb, kc, w, NR);
}

// One micro-kernel call on the tile of C at row i, column j (of C, or of C2 past n1).
static inline void P(kern_at)(const P(job) *jb, int mr, int nr, ptrdiff_t kc, const T *pa, const T *pb, ptrdiff_t i,
                              ptrdiff_t j, T beta) {
    if (jb->B2 && j >= jb->n1)
        jb->o->kern(mr, nr, kc, pa, pb, jb->C2 + i * jb->ldc2 + (j - jb->n1), jb->ldc2, jb->alpha, beta);
    else
        jb->o->kern(mr, nr, kc, pa, pb, jb->C + i * jb->ldc + j, jb->ldc, jb->alpha, beta);
}

static void P(packed_range)(const P(job) *jb, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    const OPS *o = jb->o;
    const int MR = o->mr, NR = o->nr, KC = jb->kc, MC = jb->mc, NC = jb->nc;
    const ptrdiff_t K = jb->K;
    const ptrdiff_t npad = (jb->N + NR - 1) / NR * NR;
    T *pa = P(buffer)(&P(tls_a), &P(tls_a_n), (size_t)MC * KC);
    if (!jb->PB && m1 - m0 <= MC) {
        // Few rows: B panels are used by a single block of A, so pack each KC x NR panel of B
        // right before use into an L1-sized buffer instead of packing a whole KC x NC block.
        // (Same operations per element of C as the general loop below.)
        const ptrdiff_t NG = (ptrdiff_t)NR * RK_FUSED_PANELS; // columns packed at a time
        T *pbuf = P(buffer)(&P(tls_b), &P(tls_b_n), (size_t)KC * NG);
        ptrdiff_t mc = m1 - m0;
        for (ptrdiff_t pc = 0; pc < K; pc += KC) {
            ptrdiff_t kc = K - pc < KC ? K - pc : KC;
            T beta = pc == 0 ? jb->beta : (T)1;
            for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                int h = (int)(mc - ir < MR ? mc - ir : MR);
                if (jb->transA)
                    o->pack_n(pa + ir * kc, jb->A + pc * jb->lda + m0 + ir, jb->lda, kc, h, MR);
                else
                    o->pack_t(pa + ir * kc, jb->A + (m0 + ir) * jb->lda + pc, jb->lda, kc, h, MR);
            }
            for (ptrdiff_t jg = n0; jg < n1; jg += NG) {
                ptrdiff_t ng = n1 - jg < NG ? n1 - jg : NG;
                for (ptrdiff_t jr = 0; jr < ng; jr += NR) {
                    int w = (int)(ng - jr < NR ? ng - jr : NR);
                    P(pack_b_panel)(jb, pbuf + jr * kc, pc, jg + jr, kc, w, NR);
                }
                for (ptrdiff_t jr = 0; jr < ng; jr += NR) {
                    int nr = (int)(ng - jr < NR ? ng - jr : NR);
                    for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                        int mr = (int)(mc - ir < MR ? mc - ir : MR);
                        P(kern_at)(jb, mr, nr, kc, pa + ir * kc, pbuf + jr * kc, m0 + ir, jg + jr, beta);
                    }
                }
            }
        }
        return;
    }
    T *pbuf = jb->PB ? NULL : P(buffer)(&P(tls_b), &P(tls_b_n), (size_t)KC * NC);
    for (ptrdiff_t jc = n0; jc < n1; jc += NC) {
        ptrdiff_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (ptrdiff_t pc = 0; pc < K; pc += KC) {
            ptrdiff_t kc = K - pc < KC ? K - pc : KC;
            T beta = pc == 0 ? jb->beta : (T)1;
            const T *bblk;
            if (jb->PB) {
                bblk = jb->PB + pc * npad + jc * kc; // jc is a multiple of NR
            } else {
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    int w = (int)(nc - jr < NR ? nc - jr : NR);
                    P(pack_b_panel)(jb, pbuf + jr * kc, pc, jc + jr, kc, w, NR);
                }
                bblk = pbuf;
            }
            for (ptrdiff_t ic = m0; ic < m1; ic += MC) {
                ptrdiff_t mc = m1 - ic < MC ? m1 - ic : MC;
                for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                    int h = (int)(mc - ir < MR ? mc - ir : MR);
                    if (jb->transA)
                        o->pack_n(pa + ir * kc, jb->A + pc * jb->lda + ic + ir, jb->lda, kc, h, MR);
                    else
                        o->pack_t(pa + ir * kc, jb->A + (ic + ir) * jb->lda + pc, jb->lda, kc, h, MR);
                }
                if (mc == 1) { // one row (M = 1 with pre-packed B)
                    ptrdiff_t np = (nc + NR - 1) / NR;
                    o->kern_row(np, (int)(nc - (np - 1) * NR), kc, pa, bblk,
                                jb->C + ic * jb->ldc + jc, jb->alpha, beta);
                    continue;
                }
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    int nr = (int)(nc - jr < NR ? nc - jr : NR);
                    for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                        int mr = (int)(mc - ir < MR ? mc - ir : MR);
                        P(kern_at)(jb, mr, nr, kc, pa + ir * kc, bblk + jr * kc, ic + ir, jc + jr, beta);
                    }
                }
            }
        }
    }
}

static void P(direct_range)(const P(job) *jb, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    const OPS *o = jb->o;
    T *y = P(buffer)(&P(tls_b), &P(tls_b_n), (size_t)4 * (RK_GEMV_NB + 32));
    ptrdiff_t rsa = jb->transA ? 1 : jb->lda, csa = jb->transA ? jb->lda : 1;
    for (ptrdiff_t i = m0; i < m1; i += 4) {
        int m = (int)(m1 - i < 4 ? m1 - i : 4);
        for (ptrdiff_t j = n0; j < n1; j += RK_GEMV_NB) {
            ptrdiff_t n = n1 - j < RK_GEMV_NB ? n1 - j : RK_GEMV_NB;
            o->gemv_n(m, n, jb->K, jb->A + i * rsa, rsa, csa, jb->B + j, jb->ldb,
                      jb->C + i * jb->ldc + j, jb->ldc, jb->alpha, jb->beta, y);
        }
    }
}

static void P(dot_range)(const P(job) *jb, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0, ptrdiff_t n1) {
    const OPS *o = jb->o;
    const int DR = o->dr, DC = o->dc;
    for (ptrdiff_t j = n0; j < n1; j += DC) {
        int nr = (int)(n1 - j < DC ? n1 - j : DC);
        for (ptrdiff_t i = m0; i < m1; i += DR) {
            int mr = (int)(m1 - i < DR ? m1 - i : DR);
            o->dot(mr, nr, jb->K, jb->A + i * jb->lda, jb->lda, jb->B + j * jb->ldb, jb->ldb,
                   jb->C + i * jb->ldc + j, jb->ldc, jb->alpha, jb->beta);
        }
    }
}

// Slow path for a pre-packed B whose layout belongs to another level than the active one.
static void P(prepacked_generic_range)(const P(job) *jb, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t n0,
                                       ptrdiff_t n1) {
    for (ptrdiff_t i = m0; i < m1; i++) {
        for (ptrdiff_t j = n0; j < n1; j++) {
            T s = 0;
            for (ptrdiff_t k = 0; k < jb->K; k++) {
                T a = jb->transA ? jb->A[k * jb->lda + i] : jb->A[i * jb->lda + k];
                s += a * P(packed_at)(jb->PB, jb->K, jb->N, jb->pb_nr, jb->pb_kc, k, j);
            }
            T *c = jb->C + i * jb->ldc + j;
            *c = jb->beta == 0 ? jb->alpha * s : jb->alpha * s + jb->beta * *c;
        }
    }
}

static void P(run_part)(void *ctx, int chunk, int nchunks) {
    const P(job) *jb = (const P(job) *)ctx;
    ptrdiff_t m0 = 0, m1 = jb->M, n0 = 0, n1 = jb->N;
    if (nchunks > 1) {
        ptrdiff_t len = jb->split_m ? jb->M : jb->N;
        ptrdiff_t units = (len + jb->unit - 1) / jb->unit;
        ptrdiff_t u0 = units * chunk / nchunks, u1 = units * (chunk + 1) / nchunks;
        ptrdiff_t lo = u0 * jb->unit, hi = u1 * jb->unit < len ? u1 * jb->unit : len;
        if (lo >= hi) return;
        if (jb->split_m) { m0 = lo; m1 = hi; }
        else { n0 = lo; n1 = hi; }
    }
    switch (jb->path) {
    case P(PATH_PACKED): P(packed_range)(jb, m0, m1, n0, n1); break;
    case P(PATH_DIRECT): P(direct_range)(jb, m0, m1, n0, n1); break;
    case P(PATH_DOT): P(dot_range)(jb, m0, m1, n0, n1); break;
    default: P(prepacked_generic_range)(jb, m0, m1, n0, n1); break;
    }
}

// C = beta * C (C not read when beta == 0).
static void P(scale_c)(ptrdiff_t M, ptrdiff_t N, T beta, T *C, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < M; i++) {
        T *c = C + i * ldc;
        if (beta == 0) for (ptrdiff_t j = 0; j < N; j++) c[j] = 0;
        else if (beta != 1) for (ptrdiff_t j = 0; j < N; j++) c[j] *= beta;
    }
}

static void P(execute)(P(job) *jb) {
    const OPS *o = jb->o;
    ptrdiff_t M = jb->M, N = jb->N;
    int nthreads = rk_threads();
    double flops = 2.0 * (double)M * (double)N * (double)jb->K;
    int nchunks = 1;
    if (nthreads > 1 && flops >= RK_PARALLEL_MIN_FLOPS) {
        if (jb->path == P(PATH_DOT)) {
            jb->split_m = N < 2 * o->dc && M >= 2 * o->dr;
            jb->unit = jb->split_m ? o->dr : o->dc;
        } else if (jb->path == P(PATH_DIRECT)) {
            jb->split_m = 0;
            jb->unit = 64;
        } else if (jb->path == P(PATH_PREPACKED_GENERIC)) {
            jb->split_m = 0;
            jb->unit = jb->pb_nr;
        } else {
            // Splitting over N makes every thread pack all of A, over M all of B: split the larger.
            jb->split_m = M > N || (jb->PB == NULL && M == N);
            if (jb->PB && M >= 4 * N) jb->split_m = 1;
            jb->unit = jb->split_m ? o->mr : o->nr;
        }
        // Two chunks per thread balance late or slow threads; a chunk of a packed split over M
        // packs all of B, so there one chunk per thread.
        int per = (jb->path == P(PATH_PACKED) && jb->split_m) ? 1 : 2;
        ptrdiff_t units = ((jb->split_m ? M : N) + jb->unit - 1) / jb->unit;
        nchunks = units < (ptrdiff_t)nthreads * per ? (int)units : nthreads * per;
    }
    if (nchunks > 1) rk_parallel(nchunks, P(run_part), jb);
    else P(run_part)(jb, 0, 1);
}

void PUBLIC_GEMM(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha,
                 const T *A, ptrdiff_t lda, const T *B, ptrdiff_t ldb, T beta, T *C,
                 ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0) { P(scale_c)(M, N, beta, C, ldc); return; }
#ifdef GEMV_ROW
    // One row times B^T is the matrix-vector product C[0, :] = alpha * B a + beta * C (rows of B contiguous):
    // GEMV_ROW(rows, cols, w, ldw, x, alpha, beta, y) streams B once, 4 rows at a time.
    if (M == 1 && transB) {
        const T *a = A;
        if (transA && lda != 1 && K > 1) { // A(0, k) = A[k * lda]: gather the column first
            T *t = P(buffer)(&P(tls_a), &P(tls_a_n), (size_t)K);
            for (ptrdiff_t k = 0; k < K; k++) t[k] = A[k * lda];
            a = t;
        }
        GEMV_ROW(N, K, B, ldb, a, alpha, beta, C);
        return;
    }
#endif
    P(job) jb;
    memset(&jb, 0, sizeof jb);
    int level = rk_active_level();
    jb.o = OPS_FOR_LEVEL(level);
    rk_block_sizes bs = rk_blocking(level, (int)sizeof(T));
    jb.kc = bs.kc; jb.mc = bs.mc; jb.nc = bs.nc;
    jb.transA = transA != 0;
    jb.transB = transB != 0;
    jb.M = M; jb.N = N; jb.K = K;
    jb.alpha = alpha; jb.beta = beta;
    jb.A = A; jb.lda = lda;
    jb.B = B; jb.ldb = ldb;
    jb.C = C; jb.ldc = ldc;
    // The path depends only on the shape and level, never on the thread count.
    if (jb.transB && !jb.transA && jb.o->dot && M <= RK_DOT_MAX_M) jb.path = P(PATH_DOT);
    else if (!jb.transB && M <= RK_DIRECT_MAX_M) jb.path = P(PATH_DIRECT);
    else jb.path = P(PATH_PACKED);
    P(execute)(&jb);
}

#ifdef PUBLIC_GEMM_PAIR
// C1 += A^T B1 and C2 += A^T B2 (A stored K x M; B1 K x N1, B2 K x N2): one product over the columns of both, so each
// block of A is packed once for the two; every element of C1 and C2 sees the operations of its own PUBLIC_GEMM call.
// Falls back to the two calls where the shared product would take another path (M <= RK_DIRECT_MAX_M) or a panel of
// the level's width would straddle the two (N1 not a multiple of NR).
void PUBLIC_GEMM_PAIR(ptrdiff_t M, ptrdiff_t K, const T *A, ptrdiff_t lda, ptrdiff_t N1, const T *B1, ptrdiff_t ldb1,
                      T *C1, ptrdiff_t ldc1, ptrdiff_t N2, const T *B2, ptrdiff_t ldb2, T *C2, ptrdiff_t ldc2) {
    int level = rk_active_level();
    const OPS *o = OPS_FOR_LEVEL(level);
    if (M <= RK_DIRECT_MAX_M || K <= 0 || N1 <= 0 || N2 <= 0 || N1 % o->nr != 0) {
        PUBLIC_GEMM(1, 0, M, N1, K, 1, A, lda, B1, ldb1, 1, C1, ldc1);
        PUBLIC_GEMM(1, 0, M, N2, K, 1, A, lda, B2, ldb2, 1, C2, ldc2);
        return;
    }
    P(job) jb;
    memset(&jb, 0, sizeof jb);
    jb.o = o;
    rk_block_sizes bs = rk_blocking(level, (int)sizeof(T));
    jb.kc = bs.kc; jb.mc = bs.mc; jb.nc = bs.nc;
    jb.transA = 1;
    jb.transB = 0;
    jb.M = M; jb.N = N1 + N2; jb.K = K;
    jb.alpha = 1; jb.beta = 1;
    jb.A = A; jb.lda = lda;
    jb.B = B1; jb.ldb = ldb1;
    jb.C = C1; jb.ldc = ldc1;
    jb.B2 = B2; jb.ldb2 = ldb2; jb.C2 = C2; jb.ldc2 = ldc2; jb.n1 = N1;
    jb.path = P(PATH_PACKED);
    P(execute)(&jb);
}
#endif

// ---- pre-packed B ----

typedef struct {
    uint32_t magic, level, nr, kc;
    int64_t K, N;
    uint8_t pad[64 - 4 * 4 - 2 * 8];
} P(pack_header);

size_t PUBLIC_PACK_SIZE(ptrdiff_t K, ptrdiff_t N) {
    if (K < 0) K = 0;
    if (N < 0) N = 0;
    size_t best = 0;
    for (int level = 0; level <= rk_detected_level(); level++) {
        int nr = OPS_FOR_LEVEL(level)->nr;
        size_t n = (size_t)((N + nr - 1) / nr * nr) * (size_t)K * sizeof(T);
        if (n > best) best = n;
    }
    return sizeof(P(pack_header)) + best;
}

typedef struct {
    const OPS *o;
    int kc, transB;
    ptrdiff_t K, N;
    const T *B;
    ptrdiff_t ldb;
    T *dst;
} P(pack_job);

// Packs the panels of one chunk of columns (a pure copy: any split gives the same bytes).
static void P(pack_part)(void *ctx, int chunk, int nchunks) {
    const P(pack_job) *pj = (const P(pack_job) *)ctx;
    const OPS *o = pj->o;
    const int NR = o->nr, KC = pj->kc;
    const ptrdiff_t K = pj->K, N = pj->N, ldb = pj->ldb;
    const ptrdiff_t panels = (N + NR - 1) / NR, npad = panels * NR;
    ptrdiff_t j0 = panels * chunk / nchunks * NR, j1 = panels * (chunk + 1) / nchunks * NR;
    if (j1 > N) j1 = N;
    for (ptrdiff_t pc = 0; pc < K; pc += KC) {
        ptrdiff_t kc = K - pc < KC ? K - pc : KC;
        for (ptrdiff_t j = j0; j < j1; j += NR) {
            int w = (int)(N - j < NR ? N - j : NR);
            T *d = pj->dst + pc * npad + j * kc;
            if (pj->transB) o->pack_t(d, pj->B + j * ldb + pc, ldb, kc, w, NR);
            else o->pack_n(d, pj->B + pc * ldb + j, ldb, kc, w, NR);
        }
    }
}

void PUBLIC_PACK(int transB, ptrdiff_t K, ptrdiff_t N, const T *B, ptrdiff_t ldb, void *packed) {
    if (K < 0) K = 0;
    if (N < 0) N = 0;
    int level = rk_active_level();
    const OPS *o = OPS_FOR_LEVEL(level);
    const int kc = rk_blocking(level, (int)sizeof(T)).kc;
    P(pack_header) h;
    memset(&h, 0, sizeof h);
    h.magic = RK_PACK_MAGIC + (uint32_t)sizeof(T);
    h.level = (uint32_t)level;
    h.nr = (uint32_t)o->nr;
    h.kc = (uint32_t)kc;
    h.K = K;
    h.N = N;
    memcpy(packed, &h, sizeof h);
    P(pack_job) pj = {o, kc, transB, K, N, B, ldb, (T *)((char *)packed + sizeof h)};
    ptrdiff_t panels = (N + o->nr - 1) / o->nr;
    int nchunks = 1;
    if (rk_threads() > 1 && (double)K * (double)N >= 1.0e6)
        nchunks = panels < 2 * rk_threads() ? (int)panels : 2 * rk_threads();
    if (nchunks > 1) rk_parallel(nchunks, P(pack_part), &pj);
    else P(pack_part)(&pj, 0, 1);
}

void PUBLIC_PACKED(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, T alpha, const T *A,
                   ptrdiff_t lda, const void *packedB, T beta, T *C, ptrdiff_t ldc) {
    P(pack_header) h;
    memcpy(&h, packedB, sizeof h);
    if (h.magic != RK_PACK_MAGIC + (uint32_t)sizeof(T) || h.K != K || h.N != N) {
        fprintf(stderr, "_RecurrentKitKernels: packed B does not match (K=%td N=%td)\n", K, N);
        abort();
    }
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0) { P(scale_c)(M, N, beta, C, ldc); return; }
    P(job) jb;
    memset(&jb, 0, sizeof jb);
    int level = rk_active_level();
    jb.o = OPS_FOR_LEVEL(level);
    rk_block_sizes bs = rk_blocking(level, (int)sizeof(T));
    jb.kc = bs.kc; jb.mc = bs.mc; jb.nc = bs.nc;
    jb.transA = transA != 0;
    jb.M = M; jb.N = N; jb.K = K;
    jb.alpha = alpha; jb.beta = beta;
    jb.A = A; jb.lda = lda;
    jb.PB = (const T *)((const char *)packedB + sizeof h);
    jb.pb_nr = (int)h.nr;
    jb.pb_kc = (int)h.kc;
    jb.C = C; jb.ldc = ldc;
    // The layout depends on the level's tile and on kc (a blocking replaced by rk_set_blocking after packing).
    if ((int)h.level == level && jb.o->nr == (int)h.nr && jb.kc == (int)h.kc) jb.path = P(PATH_PACKED);
    else jb.path = P(PATH_PREPACKED_GENERIC);
    P(execute)(&jb);
}
