/*
 * allocation_counter.h — counts heap allocations (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc, memalign) made by every thread of the process
 * between begin and end. Linked only into glm-alloc-check, which measures that
 * a decode step allocates nothing; unavailable under the sanitizers, which
 * bring their own allocator.
 */
#ifndef GLM_ALLOCATION_COUNTER_H
#define GLM_ALLOCATION_COUNTER_H

/// 1 when the counter interposes the allocator in this build.
int glm_allocation_counter_available(void);
void glm_allocation_counter_begin(void);
/// Allocations since begin (all threads); stops counting.
long glm_allocation_counter_end(void);

#endif
