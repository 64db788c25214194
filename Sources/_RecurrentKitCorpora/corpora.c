// The corpora are compiled into the library, so nothing is read or downloaded at run time and the `rnn` binary
// works wherever it is copied. Two ways, same bytes:
//  - C23 `#embed` of corpora/*.txt when the compiler has it (clang >= 19, GCC >= 15: `__has_embed` is defined and
//    finds both files);
//  - otherwise (clang < 19, e.g. the one in Swift 6.0 toolchains; GCC < 15) the committed generated files
//    corpora/*.inc, which hold the same bytes as C string literals. A string literal ends with a NUL that is not
//    part of the text, so that path returns sizeof - 1 where the #embed path returns sizeof.
// Define RK_CORPORA_WITHOUT_EMBED to force the fallback. After changing a .txt file, regenerate the .inc files with
// Scripts/generate-embedded-corpora.py; Scripts/check-embedded-corpora.sh checks that both paths give the .txt bytes.
#include "_RecurrentKitCorpora.h"

// `__has_embed(...)` must not be evaluated by a preprocessor that lacks it, hence the nested #if.
#if !defined(RK_CORPORA_WITHOUT_EMBED) && defined(__has_embed)
#  if __has_embed("corpora/timemachine.txt") == __STDC_EMBED_FOUND__ \
      && __has_embed("corpora/tinyshakespeare.txt") == __STDC_EMBED_FOUND__
#    define RK_CORPORA_USE_EMBED 1
#  endif
#endif
#ifndef RK_CORPORA_USE_EMBED
#  define RK_CORPORA_USE_EMBED 0
#endif

#if RK_CORPORA_USE_EMBED

static const unsigned char timemachine[] = {
#embed "corpora/timemachine.txt"
};

static const unsigned char tinyshakespeare[] = {
#embed "corpora/tinyshakespeare.txt"
};

#  define RK_CORPUS_COUNT(array) sizeof(array)

#else

static const unsigned char timemachine[] =
#include "corpora/timemachine.inc"
;

static const unsigned char tinyshakespeare[] =
#include "corpora/tinyshakespeare.inc"
;

// Leave out the string literal's terminating NUL.
#  define RK_CORPUS_COUNT(array) (sizeof(array) - 1)

#endif

const unsigned char *rk_corpus_timemachine(size_t *count) {
    *count = RK_CORPUS_COUNT(timemachine);
    return timemachine;
}

const unsigned char *rk_corpus_tinyshakespeare(size_t *count) {
    *count = RK_CORPUS_COUNT(tinyshakespeare);
    return tinyshakespeare;
}
