#ifndef RK_CORPORA_H
#define RK_CORPORA_H
#include <stddef.h>

/// Bytes of The Time Machine (H. G. Wells), d2l's copy (SHA-1 090b5e7e...).
const unsigned char *rk_corpus_timemachine(size_t *count);
/// Bytes of tiny Shakespeare (karpathy/char-rnn, SHA-1 04486597...).
const unsigned char *rk_corpus_tinyshakespeare(size_t *count);
#endif
