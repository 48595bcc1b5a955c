// BenchTests.swift — `glm-run bench --quick` runs and its numbers are sane
// (positive, finite, limits measured at each thread count, every figure tied
// to a limit). It does not judge speed: CI machines are shared and noisy.

import Foundation
import GLMBench
import Testing

@Suite("Bench", .serialized)
struct BenchTests {
    @Test("the quick bench measures every section with sane numbers")
    func quickBench_producesSaneFigures() throws {
        var options = BenchOptions()
        options.quick = true
        options.repetitions = 2
        var lines: [String] = []
        let report = try Bench.run(options) { lines.append($0) }
        #expect(!report.machine.limits.isEmpty)
        for l in report.machine.limits {
            #expect(l.read_gbps > 0.1 && l.read_gbps < 10_000, "read \(l.read_gbps) GB/s")
            #expect(l.fma_gflops > 0.1 && l.fma_gflops < 100_000, "fma \(l.fma_gflops)")
            #expect(l.int8_gops > 0.1 && l.int8_gops < 200_000, "int8 \(l.int8_gops)")
        }
        let ops = Set(report.kernels.map { $0.op.split(separator: ".").first.map(String.init) ?? $0.op })
        #expect(ops.isSuperset(of: ["matvec", "matmul", "attention", "residual_layernorm", "bias_geglu", "rope"]))
        let types = Set(report.kernels.compactMap(\.weight_type))
        #expect(types.isSuperset(of: ["q4_row", "q4_group128", "q4_0", "q8_0", "f16", "f32"]))
        for f in report.kernels {
            #expect(f.median_s > 0 && f.median_s.isFinite, "\(f.op)")
            #expect(f.fraction_of_limit > 0 && f.fraction_of_limit.isFinite, "\(f.op) \(f.weight_type ?? "")")
            #expect(["bandwidth", "fma", "int8", "int16"].contains(f.limit))
        }
        #expect(report.end_to_end.contains { $0.phase == "prefill" } && report.end_to_end.contains { $0.phase == "decode" })
        #expect(report.end_to_end.allSatisfy { $0.tokens_per_s > 0 && $0.tokens_per_s.isFinite })
        #expect(report.extrapolation != nil)
        #expect(report.batched_decode.map(\.sequences) == [1, 2, 4, 8, 16])
        #expect(report.batched_decode.allSatisfy { $0.tokens_per_s > 0 && $0.tokens_per_s.isFinite && $0.bandwidth_bound_tokens_per_s > 0 })
        #expect(report.batched_decode.first?.speedup_vs_one == 1)
        let chat = try #require(report.chat_prefix)
        #expect(chat.reuse_ttft_s > 0 && chat.recompute_ttft_s > 0 && chat.history_tokens > chat.new_tokens)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(getpid())").path
        let path = try Bench.save(report, in: dir)
        let decoded = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(decoded?["machine"] != nil && decoded?["kernels"] != nil && decoded?["end_to_end"] != nil)
        let svg = try String(contentsOfFile: path.replacingOccurrences(of: ".json", with: ".svg"), encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("circle"))
        #expect(lines.contains { $0.hasPrefix("limits") })
    }
}
