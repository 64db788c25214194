// rk_sgemm (f32) against rk_sgemm_bf16 (bf16 operands, f32 sums; vdpbf16ps where the CPU has AVX512_BF16) on the
// training shapes of an LSTM H1024 (B 64, T 35, embedding 1024): best of 3, GFLOP/s; the argument is the thread count.
// Build and run (release flags, from the package root):
//   K=Sources/_RecurrentKitKernels; clang -O2 -std=gnu2x -I$K/include -I$K Scripts/bench/bf16_gemm_bench.c $K/*.c -lm -lpthread -o /tmp/bf16_gemm_bench && /tmp/bf16_gemm_bench
#include "_RecurrentKitKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    rk_set_threads(argc > 1 ? atoi(argv[1]) : 1);
    // M, N, K, transA, transB: the input projection X W_ih^T, dX = dG W_ih, dW_ih = dG^T X, one recurrent step
    // (batch rows only), and an LSTM H512 B32 projection.
    long shapes[][5] = {{2240, 4096, 1024, 0, 1}, {2240, 1024, 4096, 0, 0}, {4096, 1024, 2240, 1, 0},
                        {64, 4096, 1024, 0, 1}, {1120, 2048, 512, 0, 1}};
    printf("bf16 dot instructions: %s\n", rk_bf16_dot_available() ? "yes (vdpbf16ps)" : "no (portable path)");
    for (int s = 0; s < 5; s++) {
        long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        int tA = (int)shapes[s][3], tB = (int)shapes[s][4];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = malloc(sizeof(float) * M * N);
        for (long i = 0; i < M * K; i++) A[i] = (float)(rand() % 200 - 100) / 100;
        for (long i = 0; i < K * N; i++) B[i] = (float)(rand() % 200 - 100) / 100;
        long lda = tA ? M : K, ldb = tB ? K : N;
        double f32 = 1e9, bf16 = 1e9;
        for (int r = 0; r < 3; r++) {
            double t = now();
            rk_sgemm(tA, tB, M, N, K, 1, A, lda, B, ldb, 0, C, N);
            t = now() - t;
            if (t < f32) f32 = t;
            t = now();
            rk_sgemm_bf16(tA, tB, M, N, K, 1, A, lda, B, ldb, 0, C, N);
            t = now() - t;
            if (t < bf16) bf16 = t;
        }
        // B packed once (a recurrent weight matrix reused every step): the packed calls alone.
        void *packed = rk_alloc(rk_sgemm_bf16_pack_b_size(K, N));
        rk_sgemm_bf16_pack_b(tB, K, N, B, ldb, packed);
        double bf16p = 1e9;
        for (int r = 0; r < 3; r++) {
            double t = now();
            rk_sgemm_bf16_packed(tA, M, N, K, 1, A, lda, packed, 0, C, N);
            t = now() - t;
            if (t < bf16p) bf16p = t;
        }
        rk_free(packed);
        double flops = 2.0 * M * N * K;
        printf("M %5ld N %5ld K %5ld transA %d transB %d: f32 %6.1f GFLOP/s, bf16 %6.1f (%.2fx), bf16 with B packed once %6.1f (%.2fx)\n",
               M, N, K, tA, tB, flops / f32 / 1e9, flops / bf16 / 1e9, f32 / bf16, flops / bf16p / 1e9, f32 / bf16p);
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
