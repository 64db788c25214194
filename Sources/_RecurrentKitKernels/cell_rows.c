// The LSTM and GRU steps' element-wise work in Float (rk_cell_rows.h): the loops of
// Sources/RecurrentKit/Cells/LSTMCell.swift and GRUCell.swift sixteen or eight lanes at a time. Only multiplies, adds
// and subtracts, each rounded on its own as in the Swift loops (contraction into fused multiply-adds is off for this
// file), so every level gives the same bits as those loops. The Swift compiler leaves them scalar (a dozen pointers
// that may alias), which cost 1-4 % of a training step. The loops are written once (cell_rows_lanes.h) and built at
// each width.
#include "_RecurrentKitKernels.h"

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#define RK_LANES 16
#include "cell_rows_lanes.h"
#define RK_LANES 8
#include "cell_rows_lanes.h"
#endif
#define RK_LANES 1
#include "cell_rows_lanes.h"

void rk_lstm_forward_rows_f32(float *gates, float *c, const float *cPrev, float *tanhCell, float *out, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H) {
    int level = rk_active_level();
    for (ptrdiff_t b = begin; b < end; b++) {
        float *gi = gates + b * 4 * H, *go = gi + 3 * H;
        rk_sigmoid_f32(gi, 2 * H);  // i and f are adjacent
        rk_tanh_f32(gi + 2 * H, H);
        rk_sigmoid_f32(go, H);
        const float *cp = cPrev + b * H;
        float *cr = c + b * H, *tc = tanhCell + b * H, *h = out + b * H;
        RK_EACH_WIDTH(level, lstm_cell_row, gi, cp, cr, H);
        for (ptrdiff_t j = 0; j < H; j++) tc[j] = cr[j];
        rk_tanh_f32(tc, H);
        RK_EACH_WIDTH(level, mul_row, go, tc, h, H);
    }
}

void rk_lstm_backward_rows_f32(const float *gates, float *dGates, const float *cPrev, const float *tanhCell,
                               const float *dh, float *dc, const float *dOut, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t H) {
    int level = rk_active_level();
    for (ptrdiff_t b = begin; b < end; b++) {
        ptrdiff_t r = b * H;
        RK_EACH_WIDTH(level, lstm_backward_row, gates + 4 * r, dGates + 4 * r, cPrev + r, tanhCell + r, dh + r, dc + r,
                      dOut + r, H);
    }
}

void rk_gru_forward_rows_f32(float *gates, const float *recurrent, float *recurrentNew, float *h, const float *hPrev,
                             ptrdiff_t begin, ptrdiff_t end, ptrdiff_t H) {
    int level = rk_active_level();
    for (ptrdiff_t b = begin; b < end; b++) {
        float *gr = gates + b * 3 * H, *gz = gr + H, *gn = gz + H;
        const float *rr = recurrent + b * 3 * H;
        RK_EACH_WIDTH(level, add_row, gr, rr, 2 * H);  // r and z pre-activations are adjacent
        rk_sigmoid_f32(gr, 2 * H);
        RK_EACH_WIDTH(level, gru_new_row, gr, gn, rr + 2 * H, recurrentNew + b * H, H);
        rk_tanh_f32(gn, H);
        RK_EACH_WIDTH(level, gru_output_row, gz, gn, hPrev + b * H, h + b * H, H);
    }
}

void rk_gru_backward_rows_f32(const float *gates, const float *hPrev, const float *recurrentNew, const float *dOut,
                              float *dProjected, float *dRecurrent, float *dh, float *dhNext, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H) {
    int level = rk_active_level();
    for (ptrdiff_t b = begin; b < end; b++) {
        ptrdiff_t r = b * H;
        RK_EACH_WIDTH(level, gru_backward_row, gates + 3 * r, hPrev + r, recurrentNew + r, dOut + r,
                      dProjected + 3 * r, dRecurrent + 3 * r, dh + r, dhNext + r, H);
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
    int level = rk_active_level();
    for (ptrdiff_t r = r0; r < r1; r++) RK_EACH_WIDTH(level, add_row, j->x + r * j->n, j->row, j->n);
}

// Below this many elements the caller adds alone (the pool's hand-off would cost more than half of it).
#define RK_ADD_ROW_SPLIT_MIN 65536

void rk_add_row_f32(float *x, const float *row, ptrdiff_t rows, ptrdiff_t n) {
    add_row_job job = {x, row, rows, n};
    int chunks = rows < 2 * rk_threads() ? (int)rows : 2 * rk_threads();
    if (rows * n >= RK_ADD_ROW_SPLIT_MIN && chunks > 1) rk_parallel(chunks, add_row_part, &job);
    else add_row_part(&job, 0, 1);
}
