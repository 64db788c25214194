#ifndef RK_CELL_ROWS_H
#define RK_CELL_ROWS_H
#include <stddef.h>

// Element-wise work of one LSTM or GRU time step over rows [begin, end) of the batch, in Float. The equations are those
// of Sources/RecurrentKit/Cells/LSTMCell.swift and GRUCell.swift, with the same operations in the same order (no fused
// multiply-add), so every instruction-set level gives the bits of those files' scalar loops (LSTMCellRowTests and
// GRUCellRowTests check it bitwise). Rows: LSTM gates and dGates have 4H values per row (i|f|g|o), GRU gates,
// recurrent, dProjected and dRecurrent 3H (r|z|n), every other array H.

/// i, f, o = sigmoid and g = tanh of the pre-activations (in place, through rk_sigmoid_f32 / rk_tanh_f32);
/// c = (f * cPrev) + (i * g); tanhCell = tanh(c) (rk_tanh_f32); out = o * tanhCell. cPrev may equal c.
void rk_lstm_forward_rows_f32(float *gates, float *c, const float *cPrev, float *tanhCell, float *out, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H);

/// dhT = dh + dOut; dcT = dc + (dhT * o) * (1 - tanhC * tanhC); di = ((dcT * g) * i) * (1 - i);
/// df = ((dcT * cPrev) * f) * (1 - f); dg = (dcT * i) * (1 - g * g); do = ((dhT * tanhC) * o) * (1 - o); dc = dcT * f.
void rk_lstm_backward_rows_f32(const float *gates, float *dGates, const float *cPrev, const float *tanhCell,
                               const float *dh, float *dc, const float *dOut, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t H);
/// GRU forward, R = W_hh h_{t-1} + b_hh in `recurrent`: r|z = sigmoid(P + R) (in place in gates, through
/// rk_sigmoid_f32); recurrentNew = R_n; n = tanh(P_n + r * R_n) (rk_tanh_f32); h = ((1 - z) * n) + (z * hPrev).
void rk_gru_forward_rows_f32(float *gates, const float *recurrent, float *recurrentNew, float *h, const float *hPrev,
                             ptrdiff_t begin, ptrdiff_t end, ptrdiff_t H);

/// GRU backward (recurrentNew = R_n of the forward): dhT = dh + dOut; dn = (dhT * (1 - z)) * (1 - n * n);
/// dz = ((dhT * (hPrev - n)) * z) * (1 - z); dr = ((dn * R_n) * r) * (1 - r); dProjected = [dr, dz, dn];
/// dRecurrent = [dr, dz, dn * r]; dh = dhNext = dhT * z (the path through W_hh is added to dhNext afterwards).
void rk_gru_backward_rows_f32(const float *gates, const float *hPrev, const float *recurrentNew, const float *dOut,
                              float *dProjected, float *dRecurrent, float *dh, float *dhNext, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H);

/// x[r * n + j] += row[j] for r < rows, j < n (a bias added to every row), split over the kernel pool when rows * n
/// is large; the same sums at every level and thread count.
void rk_add_row_f32(float *x, const float *row, ptrdiff_t rows, ptrdiff_t n);
#endif
