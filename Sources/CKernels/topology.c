/*
 * topology.c — the machine as hwloc sees it (packages, NUMA nodes, physical
 * cores, caches), the OpenMP thread count derived from it (one thread per
 * physical core unless OMP_NUM_THREADS or the caller says otherwise), binding
 * of OpenMP threads to cores, and the cache-derived blocking of the mat-mat.
 */
#include "internal.h"
#include <hwloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static int count_type(hwloc_topology_t topo, hwloc_obj_type_t type) {
    const int n = hwloc_get_nbobjs_by_type(topo, type);
    return n > 0 ? n : 0;
}

/// Size of the first cache object of `type` (that of the first core).
static int64_t cache_size(hwloc_topology_t topo, hwloc_obj_type_t type) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, type, 0);
    return obj && obj->attr ? (int64_t)obj->attr->cache.size : 0;
}

glmk_status glmk_topology_query(glmk_topology *out) {
    if (!out) return GLMK_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return GLMK_ERR_SYSTEM;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return GLMK_ERR_SYSTEM;
    }
    out->packages = count_type(topo, HWLOC_OBJ_PACKAGE);
    out->numa_nodes = count_type(topo, HWLOC_OBJ_NUMANODE);
    out->cores = count_type(topo, HWLOC_OBJ_CORE);
    out->pus = count_type(topo, HWLOC_OBJ_PU);
    if (out->cores == 0) out->cores = out->pus; // some VMs expose no core level
    out->l1d_bytes = cache_size(topo, HWLOC_OBJ_L1CACHE);
    out->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
    out->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
    out->l3_instances = count_type(topo, HWLOC_OBJ_L3CACHE);
    hwloc_obj_t package = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
    const char *model = package ? hwloc_obj_get_info_by_name(package, "CPUModel") : NULL;
    if (model) strncpy(out->cpu_model, model, sizeof out->cpu_model - 1);
    // The OS's count, not hwloc's: in VMs hwloc's NUMA memory can cover only part of RAM.
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->memory_bytes = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
    hwloc_topology_destroy(topo);
    return GLMK_OK;
}

// MARK: - Cached topology for the kernels' blocking decisions

static glmk_topology cached;
static pthread_once_t cached_once = PTHREAD_ONCE_INIT;

static void load_cached(void) {
    if (glmk_topology_query(&cached) != GLMK_OK) memset(&cached, 0, sizeof cached);
}

int64_t glmk_matmul_kc(void) {
    pthread_once(&cached_once, load_cached);
    // The (kc, 16) FP32 weight panel takes an eighth of L2 (its dequantized rows
    // another eighth): 2048 at 1 MB. Measured at GLM-130B's shapes and 512 tokens,
    // kc = 256 (the panel in L1) ran at ~82% of the FMA peak and 2048 at ~90%: the
    // tile reads the panel from L2 at no cost, and each K-block costs a pass over
    // Y (m x n floats, rows far apart) that a larger kc makes rarer. A multiple of
    // 256 (of every INT4 group and GGUF block), within [256, 4096].
    int64_t kc = cached.l2_bytes > 0 ? cached.l2_bytes / 512 : 1024;
    kc = kc / 256 * 256;
    return kc < 256 ? 256 : (kc > 4096 ? 4096 : kc);
}

// MARK: - Threads

int32_t glmk_threads_default(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && *env) {
        const long n = strtol(env, NULL, 10);
        if (n > 0 && n < 4096) return (int32_t)n;
    }
    pthread_once(&cached_once, load_cached);
    return cached.cores > 0 ? cached.cores : 1;
}

/// Binds OpenMP threads 0 .. threads - 1 of the calling thread's team to
/// physical cores first_core, first_core + 1, ... (wrapping). libomp keeps its
/// worker threads alive between regions, so the binding sticks for every
/// later kernel this thread runs.
static glmk_status bind_team(int32_t threads, int32_t first_core) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return GLMK_ERR_SYSTEM;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return GLMK_ERR_SYSTEM;
    }
    const int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    const hwloc_obj_type_t unit = cores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    const int units = cores > 0 ? cores : hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int failures = 0;
#pragma omp parallel num_threads(threads) reduction(+ : failures)
    {
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, unit, (first_core + omp_get_thread_num()) % (units > 0 ? units : 1));
        if (!obj || hwloc_set_cpubind(topo, obj->cpuset, HWLOC_CPUBIND_THREAD) != 0) failures++;
    }
    hwloc_topology_destroy(topo);
    return failures == 0 ? GLMK_OK : GLMK_ERR_SYSTEM;
}

glmk_status glmk_threads_configure(int32_t threads, int bind) {
    const int32_t n = threads > 0 ? threads : glmk_threads_default();
    omp_set_num_threads(n);
    return bind ? bind_team(n, 0) : GLMK_OK;
}

glmk_status glmk_threads_configure_stage(int32_t threads, int32_t first_core) {
    if (threads <= 0 || first_core < 0) return GLMK_ERR_INVALID_ARGUMENT;
    omp_set_num_threads(threads); // per thread: only this stage's kernels see it
    return bind_team(threads, first_core);
}

int32_t glmk_threads_current(void) { return (int32_t)omp_get_max_threads(); }
