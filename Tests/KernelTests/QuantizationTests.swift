// QuantizationTests.swift — the INT4 quantizer against the authors' own
// quantization (golden fixtures), the INT4 packing layout, group scales, the
// GGUF block types' error, and fp16 rounding.

import Foundation
import GLMRuntime
import KernelBridge
import Testing

@Suite("Quantization")
struct QuantizationTests {
    /// Both golden folders hold one matrix quantized by the reference classes
    /// (GLM-130B QuantizedColumnParallelLinear, ChatGLM QuantizedLinear).
    @Test("q4_row reproduces the authors' INT4 values, scales and packing", arguments: ["glm-130b-tiny", "chatglm-6b-tiny"])
    func q4Row_matchesGoldenQuantization(arch: String) throws {
        let file = try SafeTensorsFile(path: Fixtures.golden(arch).appendingPathComponent("expected.safetensors").path)
        let shape = try file.entry("int4.weight_fp16").shape
        let (rows, cols) = (shape[0], shape[1])
        let weights = try file.floats("int4.weight_fp16")
        let goldenQ = try file.int8s("int4.q")
        let goldenScale = try file.floats("int4.scale")
        let goldenPacked = try file.int8s("int4.packed_cuda_layout").map { UInt8(bitPattern: $0) }
        let goldenDequant = try file.floats("int4.dequant")

        let w = try WeightMatrix.quantize(weights, rows: rows, cols: cols, as: .q4Row)
        #expect(w.scales.map(Float16Bits.toFloat) == goldenScale, "scales differ from the reference")
        #expect(w.data.bytes == goldenPacked, "packed bytes differ from cuda/quantization.cu's layout")
        #expect(try Int4Packing.unpack(w.data.bytes, count: rows * cols) == goldenQ, "int4 values differ")

        // The reference dequantizes in fp16: fp16(q * scale). We keep the exact
        // product in FP32, which rounds to exactly the golden value.
        for isa in InstructionSet.supported {
            let dense = try Kernels(isa: isa).dequantize(w)
            let rounded = dense.map { Float16Bits.toFloat(Float16Bits.from($0)) }
            #expect(rounded == goldenDequant, "\(isa): dequantized values differ after fp16 rounding")
        }
    }

    @Test("int4 packing puts the even column in the high nibble and round-trips")
    func int4Packing_layoutAndRoundTrip() throws {
        #expect(try Int4Packing.pack([1, -1]) == [0x1F])
        #expect(try Int4Packing.pack([-7, 7, 3]) == [0x97, 0x30])
        let values: [Int8] = (0..<31).map { Int8($0 % 15) - 7 }
        #expect(try Int4Packing.unpack(Int4Packing.pack(values), count: values.count) == values)
        #expect(throws: KernelError.self) { try Int4Packing.pack([8]) }
    }

    @Test("q4_group: each group's scale is fp16(absmax / 7) and its largest value is +-7", arguments: [32, 64, 128])
    func q4Group_scalesFollowAbsmax(group: Int) throws {
        let (rows, cols) = (5, 300) // 300 is not a multiple of any group: the last group is partial
        var rng = SeededGenerator(seed: UInt64(group))
        let values = rng.normals(rows * cols)
        let w = try WeightMatrix.quantize(values, rows: rows, cols: cols, as: .q4Group, group: group)
        let q = try Int4Packing.unpack(w.data.bytes, count: rows * w.rowBytes * 2)
        let perRow = (cols + group - 1) / group
        for r in 0..<rows {
            for g in 0..<perRow {
                let range = (g * group)..<min(cols, (g + 1) * group)
                let absmax = range.map { abs(Float16Bits.toFloat(Float16Bits.from(values[r * cols + $0]))) }.max()!
                #expect(w.scales[r * perRow + g] == Float16Bits.from(absmax / 7), "row \(r) group \(g)")
                let qmax = range.map { abs(Int(q[r * w.rowBytes * 2 + $0])) }.max()!
                #expect(qmax == 7, "row \(r) group \(g): largest |q| is \(qmax)")
            }
        }
    }

    @Test("quantization error of each type on N(0, 1) data stays within its bound", arguments: WeightType.allCases)
    func quantizationError_withinTypeBound(type: WeightType) throws {
        let (rows, cols) = (16, 512)
        var rng = SeededGenerator(seed: 11)
        let values = rng.normals(rows * cols)
        let w = try WeightMatrix.quantize(values, rows: rows, cols: cols, as: type, group: type == .q4Group ? 64 : 0)
        let error = nmse(try Kernels(isa: .scalar).dequantize(w), values)
        #expect(error <= Tolerance.quantization(type.rawValue), "\(type): nmse \(error)")
        if type != .f32 { #expect(error > 0, "\(type) lost nothing: the quantizer did not run") }
    }

    @Test("GGUF block sizes: Q8_0 is 34 bytes and Q4_0 18 bytes per 32 weights")
    func ggufBlocks_haveSpecSizes() {
        #expect(WeightType.q8_0.rowBytes(cols: 64) == 68)
        #expect(WeightType.q4_0.rowBytes(cols: 64) == 36)
        #expect(WeightType.q4_0.rowBytes(cols: 33) == nil)
        #expect(WeightType.q4Row.rowBytes(cols: 33) == 17)
    }

    @Test("fp16 conversion rounds to nearest even and keeps specials")
    func fp16_roundsToNearestEven() {
        #expect(Float16Bits.from(1.0) == 0x3C00)
        #expect(Float16Bits.from(65504) == 0x7BFF)
        #expect(Float16Bits.from(65520) == 0x7C00)          // rounds past the largest half: inf
        #expect(Float16Bits.from(1 + 1.0 / 2048) == 0x3C00)  // halfway: ties to even (down)
        #expect(Float16Bits.from(1 + 3.0 / 2048) == 0x3C02)  // halfway: ties to even (up)
        #expect(Float16Bits.from(5.9604645e-8) == 0x0001)    // smallest subnormal
        #expect(Float16Bits.from(-0.0) == 0x8000)
        #expect(Float16Bits.toFloat(0x0001) == 5.9604645e-8)
        #expect(Float16Bits.toFloat(Float16Bits.from(.nan)).isNaN)
        for bits in stride(from: UInt16(0), to: 0x7C00, by: 37) {
            #expect(Float16Bits.from(Float16Bits.toFloat(bits)) == bits)
        }
    }
}
