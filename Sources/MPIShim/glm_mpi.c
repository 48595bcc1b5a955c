/*
 * glm_mpi.c — the MPI shim (glm_mpi.h). Point-to-point transfers are
 * non-blocking requests completed by polite_wait: MPI_Test, then a sleep that
 * grows from 20 us to about 0.3 ms while nothing arrives. MPI's own blocking
 * calls spin on the core, and a stage that waits for its input would take CPU
 * time from the stages that compute when several ranks share a machine; the
 * cap is small against a GLM-130B layer's time (about 0.1 s), though not
 * against a tiny test model's (a fraction of a millisecond).
 */
#include "glm_mpi.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int started = 0;

int glm_mpi_init(int *rank, int *size) {
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return rc;
    }
    started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (rc != MPI_SUCCESS) return rc;
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

int glm_mpi_finalize(void) {
    if (!started) return MPI_SUCCESS;
    started = 0;
    return MPI_Finalize();
}

int glm_mpi_active(void) { return started; }

static int polite_wait(MPI_Request *request, MPI_Status *status) {
    long sleep_ns = 20000;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(request, &done, status);
        if (rc != MPI_SUCCESS) return rc;
        if (done) return MPI_SUCCESS;
        struct timespec pause = {0, sleep_ns};
        nanosleep(&pause, NULL);
        if (sleep_ns < 250000) sleep_ns *= 2;
    }
}

static int send_values(const void *data, int count, MPI_Datatype type, int dest, int tag) {
    MPI_Request request;
    int rc = MPI_Isend(data, count, type, dest, tag, MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS) return rc;
    return polite_wait(&request, MPI_STATUS_IGNORE);
}

static int recv_values(void *data, int capacity, MPI_Datatype type, int source, int tag, int *received) {
    MPI_Request request;
    MPI_Status status;
    *received = 0;
    int rc = MPI_Irecv(data, capacity, type, source, tag, MPI_COMM_WORLD, &request);
    if (rc != MPI_SUCCESS) return rc;
    rc = polite_wait(&request, &status);
    if (rc != MPI_SUCCESS) return rc;
    /* status.MPI_ERROR is only set by the multiple-completion calls: MPI_Test's rc says it */
    return MPI_Get_count(&status, type, received);
}

struct glm_mpi_request {
    MPI_Request request;
    MPI_Datatype type;
};

static int start_request(void *data, int count, MPI_Datatype type, int peer, int tag, int receive, glm_mpi_request **out) {
    *out = NULL;
    glm_mpi_request *pending = malloc(sizeof *pending);
    if (!pending) return MPI_ERR_NO_MEM;
    pending->type = type;
    int rc = receive ? MPI_Irecv(data, count, type, peer, tag, MPI_COMM_WORLD, &pending->request)
                     : MPI_Isend(data, count, type, peer, tag, MPI_COMM_WORLD, &pending->request);
    if (rc != MPI_SUCCESS) {
        free(pending);
        return rc;
    }
    *out = pending;
    return MPI_SUCCESS;
}

int glm_mpi_isend_floats(const float *data, int count, int dest, int tag, glm_mpi_request **request) {
    return start_request((void *)data, count, MPI_FLOAT, dest, tag, 0, request);
}

int glm_mpi_isend_int64s(const int64_t *data, int count, int dest, int tag, glm_mpi_request **request) {
    return start_request((void *)data, count, MPI_INT64_T, dest, tag, 0, request);
}

int glm_mpi_irecv_floats(float *data, int capacity, int source, int tag, glm_mpi_request **request) {
    return start_request(data, capacity, MPI_FLOAT, source, tag, 1, request);
}

int glm_mpi_irecv_int64s(int64_t *data, int capacity, int source, int tag, glm_mpi_request **request) {
    return start_request(data, capacity, MPI_INT64_T, source, tag, 1, request);
}

int glm_mpi_wait(glm_mpi_request *request, int *received) {
    if (received) *received = 0;
    if (!request) return MPI_SUCCESS;
    MPI_Status status;
    int rc = polite_wait(&request->request, &status);
    if (rc == MPI_SUCCESS && received) rc = MPI_Get_count(&status, request->type, received);
    free(request);
    return rc;
}

int glm_mpi_send_floats(const float *data, int count, int dest, int tag) {
    return send_values(data, count, MPI_FLOAT, dest, tag);
}

int glm_mpi_send_int64s(const int64_t *data, int count, int dest, int tag) {
    return send_values(data, count, MPI_INT64_T, dest, tag);
}

int glm_mpi_recv_floats(float *data, int capacity, int source, int tag, int *received) {
    return recv_values(data, capacity, MPI_FLOAT, source, tag, received);
}

int glm_mpi_recv_int64s(int64_t *data, int capacity, int source, int tag, int *received) {
    return recv_values(data, capacity, MPI_INT64_T, source, tag, received);
}

void glm_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void glm_mpi_error_string(int code, char *buffer, int capacity) {
    if (capacity <= 0) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    text[length < MPI_MAX_ERROR_STRING ? length : MPI_MAX_ERROR_STRING - 1] = 0;
    strncpy(buffer, length > 0 ? text : "unknown MPI error", (size_t)capacity - 1);
    buffer[capacity - 1] = 0;
}

void glm_mpi_library_version(char *buffer, int capacity) {
    if (capacity <= 0) return;
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) length = 0;
    text[length < MPI_MAX_LIBRARY_VERSION_STRING ? length : MPI_MAX_LIBRARY_VERSION_STRING - 1] = 0;
    char *newline = strchr(text, '\n');
    if (newline) *newline = 0;
    strncpy(buffer, text, (size_t)capacity - 1);
    buffer[capacity - 1] = 0;
}
