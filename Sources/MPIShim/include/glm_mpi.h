/*
 * glm_mpi.h — the thin C shim over MPI that the pipeline's ranks use: start
 * and stop, rank and size, point-to-point sends and receives of float buffers
 * and small int64 headers on MPI_COMM_WORLD, and abort. Nothing else of MPI
 * reaches Swift.
 *
 * Every call returns 0 or an MPI error code (errors return rather than abort:
 * MPI_ERRORS_RETURN), which glm_mpi_error_string spells. Waits poll with a
 * short sleep instead of MPI's busy loop: a rank waiting for its neighbour
 * then leaves the cores to the ranks that compute, which matters when ranks
 * share a machine (3 ranks on 2 cores in the tests).
 */
#ifndef GLM_MPI_H
#define GLM_MPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts MPI (once per process). rank and size in MPI_COMM_WORLD. */
int glm_mpi_init(int *rank, int *size);
/* Stops MPI; every rank calls it before exiting normally. */
int glm_mpi_finalize(void);
/* 1 while MPI is started and not yet stopped. */
int glm_mpi_active(void);

/* Sends count floats / int64s to rank dest with tag; returns once the buffer may be reused. */
int glm_mpi_send_floats(const float *data, int count, int dest, int tag);
int glm_mpi_send_int64s(const int64_t *data, int count, int dest, int tag);
/* A send in flight: started by glm_mpi_isend_*, finished (and freed) by glm_mpi_wait.
 * The data must stay untouched until then. A stage hands its output on this way and
 * goes on to its next micro-batch while the next stage is still busy. */
typedef struct glm_mpi_request glm_mpi_request;
int glm_mpi_isend_floats(const float *data, int count, int dest, int tag, glm_mpi_request **request);
int glm_mpi_isend_int64s(const int64_t *data, int count, int dest, int tag, glm_mpi_request **request);
/* A receive posted ahead (into data, at most capacity values): rank 0 posts the receive
 * of each chunk's logits when it submits the chunk, so the last rank's send completes
 * whatever rank 0 is doing; without it, a ring of ranks each waiting for its send
 * could deadlock. */
int glm_mpi_irecv_floats(float *data, int capacity, int source, int tag, glm_mpi_request **request);
int glm_mpi_irecv_int64s(int64_t *data, int capacity, int source, int tag, glm_mpi_request **request);
/* Waits for a send or receive started above to finish and frees it (also when it
 * failed). For a receive, *received is how many values came (received may be NULL). */
int glm_mpi_wait(glm_mpi_request *request, int *received);

/* Receives at most capacity values from rank source with tag; *received is how many came. */
int glm_mpi_recv_floats(float *data, int capacity, int source, int tag, int *received);
int glm_mpi_recv_int64s(int64_t *data, int capacity, int source, int tag, int *received);

/* Ends every rank of the job (mpirun reports it) with exit code code. */
void glm_mpi_abort(int code);

/* The text of an MPI error code, into buffer (always terminated). */
void glm_mpi_error_string(int code, char *buffer, int capacity);
/* The MPI library's version line, into buffer (always terminated). */
void glm_mpi_library_version(char *buffer, int capacity);

#ifdef __cplusplus
}
#endif
#endif
