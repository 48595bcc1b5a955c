/*
 * allocation_counter.c — the executable's own malloc family, which the
 * dynamic linker prefers to glibc's for every library in the process (Swift's
 * runtime included). Each forwards to glibc's __libc_* entry points and, while
 * counting, adds one to a process-wide atomic counter.
 */
#include "allocation_counter.h"
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GLM_COUNTER_OFF 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GLM_COUNTER_OFF 1
#endif

static atomic_int counting;
static atomic_long allocations;

#if defined(__linux__) && defined(__GLIBC__) && !defined(GLM_COUNTER_OFF)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

#include <execinfo.h>
#include <stdlib.h>

/// GLM_ALLOC_TRACE=N prints the call stacks of the first N counted allocations (finding one).
static _Thread_local int tracing;

static inline void count(void) {
    if (!atomic_load_explicit(&counting, memory_order_relaxed)) return;
    const long n = atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    static long limit = -1;
    if (limit < 0) { const char *e = getenv("GLM_ALLOC_TRACE"); limit = e ? atol(e) : 0; }
    if (n < limit && !tracing) {
        tracing = 1;
        void *frames[24];
        const int depth = backtrace(frames, 24);
        backtrace_symbols_fd(frames, depth, 2);
        (void)!write(2, "----\n", 5);
        tracing = 0;
    }
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    count();
    void *p = __libc_memalign(alignment, size);
    if (!p && size) return ENOMEM;
    *out = p;
    return 0;
}

int glm_allocation_counter_available(void) { return 1; }
#else
int glm_allocation_counter_available(void) { return 0; }
#endif

void glm_allocation_counter_begin(void) {
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
}

long glm_allocation_counter_end(void) {
    atomic_store(&counting, 0);
    return atomic_load(&allocations);
}
