// WeightType.swift — the storage types of weight matrices, mirroring the C
// type table (glm_kernels.h `glmk_type`).

internal import CKernels

public enum WeightType: String, CaseIterable, Sendable, Codable {
    case f32
    case f16
    /// GGUF Q8_0: blocks of 32 int8 with an fp16 scale.
    case q8_0
    /// GGUF Q4_0: blocks of 32 4-bit values with an fp16 scale.
    case q4_0
    /// GLM-130B INT4: q in [-7, 7], one fp16 absmax scale per output row.
    case q4Row = "q4_row"
    /// GLM INT4 with one fp16 scale per group of 32, 64 or 128 weights.
    case q4Group = "q4_group"

    var cValue: glmk_type {
        switch self {
        case .f32: return GLMK_TYPE_F32
        case .f16: return GLMK_TYPE_F16
        case .q8_0: return GLMK_TYPE_Q8_0
        case .q4_0: return GLMK_TYPE_Q4_0
        case .q4Row: return GLMK_TYPE_Q4_ROW
        case .q4Group: return GLMK_TYPE_Q4_GROUP
        }
    }

    /// Columns must be a multiple of this (32 for the GGUF block types, else 1).
    public var block: Int { Int(glmk_type_info_get(cValue).pointee.block) }

    /// Bytes of one stored row of `cols` columns (scales excluded), nil if `cols` does not fit.
    public func rowBytes(cols: Int) -> Int? {
        let bytes = glmk_row_bytes(cValue, Int64(cols))
        return bytes < 0 ? nil : Int(bytes)
    }

    /// fp16 scales stored per row (Q4 types only).
    public func scalesPerRow(cols: Int, group: Int) -> Int {
        Int(glmk_scales_per_row(cValue, Int64(cols), Int64(group)))
    }

    /// Bits per weight including scales, for reports.
    public func bitsPerWeight(cols: Int, group: Int) -> Double {
        guard let bytes = rowBytes(cols: cols) else { return .nan }
        return Double(8 * (bytes + 2 * scalesPerRow(cols: cols, group: group))) / Double(cols)
    }
}
