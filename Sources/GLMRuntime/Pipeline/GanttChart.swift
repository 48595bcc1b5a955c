// GanttChart.swift — an SVG of a simulated schedule: one row per stage, time
// left to right, one box per forward (solid) or backward (lighter) pass,
// coloured by micro-batch; the gaps are the bubbles.

import Foundation

public enum GanttChart {
    public static func svg(_ r: SimulationResult, title: String) -> String {
        let (w, rowHeight, left, top) = (900.0, 28.0, 70.0, 40.0)
        let h = top + Double(r.stages) * rowHeight + 50
        let scale = (w - left - 20) / max(r.makespan, 1e-12)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"\(w / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"13\">\(title): \(r.schedule.rawValue), \(r.stages) stages, \(r.microBatches) micro-batches, bubble \(String(format: "%.1f", r.bubbleFraction * 100))% (formula \(String(format: "%.1f", r.formulaBubble * 100))%)</text>"
        for stage in 0..<r.stages {
            let y = top + Double(stage) * rowHeight
            s += "<text x=\"\(left - 8)\" y=\"\(y + rowHeight / 2 + 4)\" text-anchor=\"end\">stage \(stage)</text>"
            s += "<rect x=\"\(left)\" y=\"\(y + 2)\" width=\"\(w - left - 20)\" height=\"\(rowHeight - 4)\" fill=\"#f2f2f2\"/>"
        }
        for op in r.ops where op.end > op.start {
            let hue = Double(op.microBatch) * 360 / Double(max(r.microBatches, 1))
            let lightness = op.backward ? 75 : 50
            let y = top + Double(op.stage) * rowHeight
            s += "<rect x=\(String(format: "\"%.2f\"", left + op.start * scale)) y=\"\(y + 3)\" width=\(String(format: "\"%.2f\"", max((op.end - op.start) * scale - 0.5, 0.5))) height=\"\(rowHeight - 6)\" fill=\"hsl(\(Int(hue)),65%,\(lightness)%)\"><title>\(op.backward ? "backward" : "forward") micro-batch \(op.microBatch), \(String(format: "%.4g", op.start))..\(String(format: "%.4g", op.end)) s</title></rect>"
            if (op.end - op.start) * scale > 14 {
                s += "<text x=\(String(format: "\"%.2f\"", left + (op.start + op.end) / 2 * scale)) y=\"\(y + rowHeight / 2 + 4)\" text-anchor=\"middle\" fill=\"white\">\(op.backward ? "B" : "F")\(op.microBatch)</text>"
            }
        }
        let axisY = top + Double(r.stages) * rowHeight + 18
        s += "<text x=\"\(left)\" y=\"\(axisY)\">0</text><text x=\"\(w - 20)\" y=\"\(axisY)\" text-anchor=\"end\">\(String(format: "%.4g", r.makespan)) s</text>"
        s += "<text x=\"\(w / 2)\" y=\"\(axisY + 16)\" text-anchor=\"middle\">time (grey: idle, the bubble)</text>"
        return s + "</svg>\n"
    }
}
