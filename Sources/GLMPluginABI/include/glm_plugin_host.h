/*
 * glm_plugin_host.h — what the runtime (not a plugin) uses to call a plugin
 * kernel while verifying it: the call runs with a handler that turns a crash
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL) on the calling thread into a return
 * value, so verification can reject a kernel that dereferences a NULL bias
 * instead of taking the process down. It is for verification only: a kernel
 * that crashed is never called again (its state may be broken), and a crash
 * on a thread the kernel started itself is not caught (verification calls
 * with OpenMP limited to one thread).
 */
#ifndef GLM_PLUGIN_HOST_H
#define GLM_PLUGIN_HOST_H

#include "glm_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Calls fn(y, w, x, bias); returns its status, or -signal if it crashed.
int glm_plugin_host_call_matvec(glm_plugin_matvec_fn fn, float *y, const glm_plugin_matrix *w, const float *x,
                                const float *bias);

/// Calls fn(y, y_stride, w, x, x_stride, m, bias); returns its status, or -signal if it crashed.
int glm_plugin_host_call_matmul(glm_plugin_matmul_fn fn, float *y, int64_t y_stride, const glm_plugin_matrix *w,
                                const float *x, int64_t x_stride, int64_t m, const float *bias);

#ifdef __cplusplus
}
#endif

#endif
