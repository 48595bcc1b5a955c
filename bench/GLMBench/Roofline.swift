// Roofline.swift — an SVG roofline: achieved GFLOP/s of every kernel figure
// against arithmetic intensity (flops per byte), under the measured bandwidth
// slope and FMA ceiling of the same run (all threads).

import Foundation

enum Roofline {
    static func svg(_ report: BenchReport) -> String {
        let limits = report.machine.limits.max { $0.threads < $1.threads }!
        let points = report.kernels.filter { $0.threads == limits.threads && $0.flops > 0 && $0.bytes > 0 }
        let (w, h, pad) = (760.0, 480.0, 60.0)
        let xs = points.map { $0.flops / $0.bytes }, ys = points.map(\.gflops)
        let xMin = pow(10, floor(log10(max(min(xs.min() ?? 0.1, limits.fma_gflops / limits.read_gbps / 10), 1e-3))))
        let xMax = pow(10, ceil(log10(max(xs.max() ?? 100, limits.fma_gflops / limits.read_gbps * 10))))
        let yMin = pow(10, floor(log10(max(min(ys.min() ?? 1, limits.read_gbps * xMin), 1e-3))))
        let yMax = pow(10, ceil(log10(limits.int8_gops * 1.5)))
        func x(_ v: Double) -> Double { pad + (log10(v) - log10(xMin)) / (log10(xMax) - log10(xMin)) * (w - 2 * pad) }
        func y(_ v: Double) -> Double { h - pad - (log10(max(v, yMin)) - log10(yMin)) / (log10(yMax) - log10(yMin)) * (h - 2 * pad) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"\(w / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Roofline: \(escape(report.machine.cpu)), \(limits.threads) threads, \(report.date)</text>"
        s += "<line x1=\"\(pad)\" y1=\"\(h - pad)\" x2=\"\(w - pad)\" y2=\"\(h - pad)\" stroke=\"black\"/><line x1=\"\(pad)\" y1=\"\(pad)\" x2=\"\(pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>"
        var decade = xMin
        while decade <= xMax * 1.001 {
            s += "<text x=\"\(x(decade))\" y=\"\(h - pad + 16)\" text-anchor=\"middle\">\(label(decade))</text>"
            decade *= 10
        }
        decade = yMin
        while decade <= yMax * 1.001 {
            s += "<text x=\"\(pad - 6)\" y=\"\(y(decade) + 4)\" text-anchor=\"end\">\(label(decade))</text>"
            decade *= 10
        }
        s += "<text x=\"\(w / 2)\" y=\"\(h - 18)\" text-anchor=\"middle\">arithmetic intensity (flops per byte)</text>"
        s += "<text x=\"16\" y=\"\(h / 2)\" transform=\"rotate(-90 16 \(h / 2))\" text-anchor=\"middle\">GFLOP/s</text>"
        // the roof: bandwidth slope up to the ridge, then the FMA ceiling; int8 ceiling dashed
        let ridge = limits.fma_gflops / limits.read_gbps
        s += "<polyline fill=\"none\" stroke=\"#444\" stroke-width=\"2\" points=\"\(x(xMin)),\(y(limits.read_gbps * xMin)) \(x(ridge)),\(y(limits.fma_gflops)) \(x(xMax)),\(y(limits.fma_gflops))\"/>"
        s += "<line x1=\"\(x(limits.int8_gops / limits.read_gbps))\" y1=\"\(y(limits.int8_gops))\" x2=\"\(x(xMax))\" y2=\"\(y(limits.int8_gops))\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>"
        s += "<text x=\"\(w - pad)\" y=\"\(y(limits.fma_gflops) - 5)\" text-anchor=\"end\">FP32 FMA \(String(format: "%.0f", limits.fma_gflops)) GFLOP/s</text>"
        s += "<text x=\"\(w - pad)\" y=\"\(y(limits.int8_gops) - 5)\" text-anchor=\"end\" fill=\"#666\">int8 dot \(String(format: "%.0f", limits.int8_gops)) GOP/s</text>"
        s += "<text x=\"\(x(xMin) + 4)\" y=\"\(y(limits.read_gbps * xMin) - 6)\">read \(String(format: "%.1f", limits.read_gbps)) GB/s</text>"
        let colors = ["matvec": "#1f77b4", "matmul": "#d62728", "attention": "#2ca02c", "other": "#9467bd"]
        for p in points {
            let family = p.op.hasPrefix("matvec") ? "matvec" : p.op.hasPrefix("matmul") ? "matmul" : p.op.hasPrefix("attention") ? "attention" : "other"
            s += "<circle cx=\"\(x(p.flops / p.bytes))\" cy=\"\(y(p.gflops))\" r=\"4\" fill=\"\(colors[family]!)\" fill-opacity=\"0.7\"><title>\(escape(p.op)) \(p.weight_type ?? "") m=\(p.m): \(String(format: "%.1f", p.gflops)) GFLOP/s, \(String(format: "%.0f", p.fraction_of_limit * 100))% of \(p.limit)</title></circle>"
        }
        var ly = pad + 10
        for (name, color) in [("mat-vec (decode)", "#1f77b4"), ("mat-mat (prefill)", "#d62728"), ("attention", "#2ca02c"), ("element-wise", "#9467bd")] {
            s += "<circle cx=\"\(pad + 14)\" cy=\"\(ly)\" r=\"4\" fill=\"\(color)\"/><text x=\"\(pad + 24)\" y=\"\(ly + 4)\">\(name)</text>"
            ly += 16
        }
        return s + "</svg>\n"
    }

    private static func label(_ v: Double) -> String { v >= 1 ? String(format: "%.0f", v) : String(format: "%g", v) }
    private static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
