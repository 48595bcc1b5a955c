// Support.swift — fixture paths, golden data access and model conversion for
// the runtime tests.

import Foundation
import GLMRuntime

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func folder(_ arch: String) -> String { root.appendingPathComponent(arch).path }
}

struct GoldenCase {
    let name: String
    let inputIDs: [Int32]
    let generated: [Int32]
    let json: [String: Any]
}

/// cases.json and expected.safetensors of one golden folder.
struct Golden {
    let arch: String
    let cases: [GoldenCase]
    let expected: SafeTensorsFile
    let maxAbsLogit: Float

    init(_ arch: String) throws {
        self.arch = arch
        let folder = Fixtures.folder(arch)
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/cases.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        // "int4" sits beside the cases: it describes the INT4 tensors, not a prompt
        let cases = root["cases"] as! [String: [String: Any]]
        self.cases = cases.keys.sorted().filter { cases[$0]?["input_ids"] != nil }.map { name in
            let c = cases[name]!
            return GoldenCase(name: name, inputIDs: (c["input_ids"] as! [Int]).map(Int32.init),
                              generated: (c["generated_ids"] as! [Int]).map(Int32.init), json: c)
        }
        expected = try SafeTensorsFile(path: folder + "/expected.safetensors")
        // one figure for the folder (v1's), or the largest of the cases' own (the kin's)
        let perCase = cases.values.compactMap { $0["max_abs_logit"] as? Double }.max()
        maxAbsLogit = Float(root["max_abs_logit"] as? Double ?? perCase ?? 10)
    }
}

/// Converts a golden checkpoint once per (arch, type) into a temporary folder.
enum ConvertedModels {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: GLMModel] = [:]

    static func model(_ arch: String, _ type: ConversionType) throws -> GLMModel {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(arch)-\(type.rawValue)"
        if let model = cache[key] { return model }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glmruntime-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("\(key).gguf").path
        _ = try ModelConverter(type: type).convert(folder: Fixtures.folder(arch), to: path)
        let model = try GLMModel(path: path)
        cache[key] = model
        return model
    }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

func nmse(_ actual: [Float], _ expected: [Float]) -> Double {
    var err = 0.0, ref = 0.0
    for (a, e) in zip(actual, expected) {
        err += (Double(a) - Double(e)) * (Double(a) - Double(e))
        ref += Double(e) * Double(e)
    }
    return ref == 0 ? err : err / ref
}

func argmax(_ row: ArraySlice<Float>) -> Int32 {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return Int32(best - row.startIndex)
}
