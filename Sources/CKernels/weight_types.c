/*
 * weight_types.c — the weight-type table (one row per glmk_type) and the
 * descriptor checks every product and lookup kernel shares.
 */
#include "internal.h"

static const glmk_type_info type_infos[GLMK_TYPE_COUNT] = {
    [GLMK_TYPE_F32] = {.name = "f32", .block = 1, .block_bytes = 4, .has_scales = 0},
    [GLMK_TYPE_F16] = {.name = "f16", .block = 1, .block_bytes = 2, .has_scales = 0},
    [GLMK_TYPE_Q8_0] = {.name = "q8_0", .block = GLMK_QK, .block_bytes = sizeof(glmk_block_q8_0), .has_scales = 0},
    [GLMK_TYPE_Q4_0] = {.name = "q4_0", .block = GLMK_QK, .block_bytes = sizeof(glmk_block_q4_0), .has_scales = 0},
    [GLMK_TYPE_Q4_ROW] = {.name = "q4_row", .block = 1, .block_bytes = 0, .has_scales = 1},
    [GLMK_TYPE_Q4_GROUP] = {.name = "q4_group", .block = 1, .block_bytes = 0, .has_scales = 1},
};

const glmk_type_info *glmk_type_info_get(glmk_type type) {
    if ((int)type < 0 || type >= GLMK_TYPE_COUNT) return NULL;
    return &type_infos[type];
}

int64_t glmk_row_bytes(glmk_type type, int64_t cols) {
    const glmk_type_info *info = glmk_type_info_get(type);
    if (!info || cols <= 0 || cols % info->block != 0) return -1;
    if (type == GLMK_TYPE_Q4_ROW || type == GLMK_TYPE_Q4_GROUP) return (cols + 1) / 2;
    return cols / info->block * info->block_bytes;
}

int64_t glmk_scales_per_row(glmk_type type, int64_t cols, int64_t group) {
    if (type == GLMK_TYPE_Q4_ROW) return 1;
    if (type == GLMK_TYPE_Q4_GROUP) return group > 0 ? (cols + group - 1) / group : 0;
    return 0;
}

glmk_status glmk_matrix_validate(const glmk_matrix *w) {
    if (!w || !w->data) return GLMK_ERR_INVALID_ARGUMENT;
    const glmk_type_info *info = glmk_type_info_get(w->type);
    if (!info || w->rows <= 0 || w->cols <= 0) return GLMK_ERR_INVALID_ARGUMENT;
    const int64_t row_bytes = glmk_row_bytes(w->type, w->cols);
    if (row_bytes < 0) return GLMK_ERR_UNSUPPORTED; // cols not a multiple of the block
    if (w->row_bytes != row_bytes) return GLMK_ERR_INVALID_ARGUMENT;
    if (info->has_scales && !w->scales) return GLMK_ERR_INVALID_ARGUMENT;
    if (w->type == GLMK_TYPE_Q4_ROW && w->group != w->cols) return GLMK_ERR_INVALID_ARGUMENT;
    // Groups are even so that every group starts on a byte boundary.
    if (w->type == GLMK_TYPE_Q4_GROUP && (w->group < 2 || w->group % 2 != 0)) return GLMK_ERR_UNSUPPORTED;
    return GLMK_OK;
}

glmk_status glmk_check_product(const float *y, const glmk_matrix *w, const float *x) {
    if (!y || !x) return GLMK_ERR_INVALID_ARGUMENT;
    return glmk_matrix_validate(w);
}

glmk_status glmk_check_embedding(const float *out, const glmk_matrix *table, const int32_t *ids, int64_t count) {
    if (!out || !ids || count < 0) return GLMK_ERR_INVALID_ARGUMENT;
    const glmk_status status = glmk_matrix_validate(table);
    if (status != GLMK_OK) return status;
    for (int64_t t = 0; t < count; t++)
        if (ids[t] < 0 || ids[t] >= table->rows) return GLMK_ERR_OUT_OF_RANGE;
    return GLMK_OK;
}

glmk_status glmk_check_dequantize(const float *out, const glmk_matrix *w, int64_t row, int64_t k0, int64_t count) {
    if (!out) return GLMK_ERR_INVALID_ARGUMENT;
    const glmk_status status = glmk_matrix_validate(w);
    if (status != GLMK_OK) return status;
    const int64_t block = glmk_type_info_get(w->type)->block;
    if (row < 0 || row >= w->rows || k0 < 0 || count < 0 || k0 + count > w->cols || k0 % block != 0) return GLMK_ERR_OUT_OF_RANGE;
    return GLMK_OK;
}
