// LD_PRELOAD shim: counts malloc/calloc/realloc/posix_memalign/aligned_alloc calls and prints "ALLOCS n" at exit.
// Used by count-allocations.sh; not part of the package.
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
extern void *__libc_malloc(size_t); extern void *__libc_calloc(size_t,size_t); extern void *__libc_realloc(void*,size_t);
extern void *__libc_memalign(size_t,size_t);
static volatile size_t count;
void *malloc(size_t s){ __atomic_fetch_add(&count,1,0); return __libc_malloc(s);} 
void *calloc(size_t a,size_t b){ __atomic_fetch_add(&count,1,0); return __libc_calloc(a,b);} 
void *realloc(void*p,size_t s){ __atomic_fetch_add(&count,1,0); return __libc_realloc(p,s);} 
int posix_memalign(void**p,size_t a,size_t s){ __atomic_fetch_add(&count,1,0); *p=__libc_memalign(a,s); return *p?0:12;}
void *aligned_alloc(size_t a,size_t s){ __atomic_fetch_add(&count,1,0); return __libc_memalign(a,s);} 
__attribute__((destructor)) static void report(void){ fprintf(stderr,"ALLOCS %zu\n",count);} 
