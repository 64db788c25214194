// The corpora are compiled into the library (C23 #embed), so nothing is read or downloaded at run time
// and the `rnn` binary works wherever it is copied.
#include "CEmbeddedCorpora.h"

static const unsigned char timemachine[] = {
#embed "corpora/timemachine.txt"
};

static const unsigned char tinyshakespeare[] = {
#embed "corpora/tinyshakespeare.txt"
};

const unsigned char *rk_corpus_timemachine(size_t *count) {
    *count = sizeof(timemachine);
    return timemachine;
}

const unsigned char *rk_corpus_tinyshakespeare(size_t *count) {
    *count = sizeof(tinyshakespeare);
    return tinyshakespeare;
}
