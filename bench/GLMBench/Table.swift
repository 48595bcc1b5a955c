// Table.swift — the human-readable lines of the bench, printed as figures arrive.

import Foundation

enum Table {
    static func limitsRow(_ l: LimitFigures) -> String {
        String(format: "limits, %2d thread(s): read %7.1f GB/s   FP32 FMA %8.1f GFLOP/s   int8 dot %8.1f GOP/s (%.2fx FP32)",
               l.threads, l.read_gbps, l.fma_gflops, l.int8_gops, l.int8_gops / l.fma_gflops)
            + (l.int16_gops.map { String(format: "   int16 dot %8.1f GOP/s", $0) } ?? "")
    }

    static let kernelHeader = "kernel                    type           m      n      k thr     median  spread     GB/s   GFLOP/s  limit     fraction"

    static func kernelRow(_ f: KernelFigure) -> String {
        pad(f.op, 25) + " " + pad(f.weight_type ?? "-", 10)
            + String(format: "%5d %6d %6d %3d %9.3f ms %5.1f%% %8.1f %9.1f  ", f.m, f.n, f.k, f.threads, f.median_s * 1e3,
                     f.spread * 100, f.gbps, f.gflops)
            + pad(f.limit, 9) + String(format: " %6.1f%%", f.fraction_of_limit * 100)
    }

    /// Left-aligned in `width` columns (String(format:) does not pad %@ on Linux).
    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    static func endToEndRow(_ f: EndToEndFigure) -> String {
        let bound = f.fraction_of_bandwidth_bound.map { String(format: ", %.0f%% of the bandwidth bound", $0 * 100) } ?? ""
        let peak = f.fraction_of_fma_peak.map { String(format: ", %.0f%% of the FP32 FMA peak", $0 * 100) } ?? ""
        let activations = f.activations.map { " (\($0) activations)" } ?? ""
        return "end to end: \(f.layers) layer(s) " + pad(f.phase, 8)
            + String(format: "%3d tokens, %d thread(s), ", f.tokens, f.threads) + (f.fused ? "fused  " : "unfused")
            + String(format: ": %8.2f tokens/s (median %.4f s, spread %.1f%%)", f.tokens_per_s, f.median_s, f.spread * 100) + bound + peak + activations
    }

    static func batchedDecodeRow(_ f: BatchedDecodeFigure) -> String {
        String(format: "batched decode: %d layer(s), %2d sequence(s), %d thread(s): %8.2f tokens/s (step %.4f s, spread %.1f%%), %.2fx one sequence; weights-once bound %.2f tokens/s (%.0f%%)",
               f.layers, f.sequences, f.threads, f.tokens_per_s, f.median_step_s, f.spread * 100, f.speedup_vs_one,
               f.bandwidth_bound_tokens_per_s, f.tokens_per_s / f.bandwidth_bound_tokens_per_s * 100)
            + (f.fraction_of_int16_peak.map { String(format: ", %.0f%% of the int16 dot peak", $0 * 100) } ?? "")
    }
}
