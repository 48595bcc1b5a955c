/*
 * host_call.c — crash-catching plugin calls for verification
 * (glm_plugin_host.h). The handler is installed around each call and the
 * previous one restored after it, on an alternate stack so a stack overflow
 * in the kernel is caught too. Only a fault on a thread with an active call
 * jumps back; any other fault gets the previous handler back and re-runs the
 * faulting instruction under it (a crash, or a sanitizer's report). Guarded
 * calls are made from one thread at a time (the verifier's).
 */
#define _GNU_SOURCE
#include "glm_plugin_host.h"
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local sigjmp_buf *active_call;

static const int caught[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define CAUGHT (sizeof caught / sizeof caught[0])

typedef struct {
    struct sigaction previous[CAUGHT];
    stack_t previous_stack;
    void *stack;
} host_guard;

/* the handlers a fault outside a guarded call goes back to */
static struct sigaction previous_handlers[CAUGHT];

static void on_fault(int sig) {
    if (active_call) siglongjmp(*active_call, sig);
    for (size_t i = 0; i < CAUGHT; i++) {
        if (caught[i] == sig) sigaction(sig, &previous_handlers[i], NULL);
    }
}

static void guard_on(host_guard *g) {
    g->stack = malloc(SIGSTKSZ * 4);
    stack_t alt = {.ss_sp = g->stack, .ss_size = SIGSTKSZ * 4, .ss_flags = 0};
    sigaltstack(&alt, &g->previous_stack);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    action.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < CAUGHT; i++) {
        sigaction(caught[i], &action, &g->previous[i]);
        previous_handlers[i] = g->previous[i];
    }
}

static void guard_off(host_guard *g) {
    for (size_t i = 0; i < CAUGHT; i++) sigaction(caught[i], &g->previous[i], NULL);
    sigaltstack(&g->previous_stack, NULL);
    free(g->stack);
}

/* One kernel call, whichever its kind. */
typedef struct {
    glm_plugin_matvec_fn matvec; /* exactly one of the two is set */
    glm_plugin_matmul_fn matmul;
    float *y;
    int64_t y_stride;
    const glm_plugin_matrix *w;
    const float *x;
    int64_t x_stride;
    int64_t m;
    const float *bias;
} kernel_call;

static int guarded_call(const kernel_call *c) {
    host_guard g;
    sigjmp_buf jump;
    guard_on(&g);
    int sig = sigsetjmp(jump, 1);
    int status;
    if (sig == 0) {
        active_call = &jump;
        status = c->matvec ? c->matvec(c->y, c->w, c->x, c->bias) : c->matmul(c->y, c->y_stride, c->w, c->x, c->x_stride, c->m, c->bias);
    } else {
        status = -sig;
    }
    active_call = NULL;
    guard_off(&g);
    return status;
}

int glm_plugin_host_call_matvec(glm_plugin_matvec_fn fn, float *y, const glm_plugin_matrix *w, const float *x,
                                const float *bias) {
    const kernel_call c = {.matvec = fn, .y = y, .w = w, .x = x, .bias = bias};
    return guarded_call(&c);
}

int glm_plugin_host_call_matmul(glm_plugin_matmul_fn fn, float *y, int64_t y_stride, const glm_plugin_matrix *w,
                                const float *x, int64_t x_stride, int64_t m, const float *bias) {
    const kernel_call c = {.matmul = fn, .y = y, .y_stride = y_stride, .w = w, .x = x, .x_stride = x_stride, .m = m, .bias = bias};
    return guarded_call(&c);
}
