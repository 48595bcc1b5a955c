// AllocationTests.swift — a decode step allocates nothing once the buffers
// have their size: counted by glm-alloc-check (its own process, every thread,
// the whole malloc family), for one session and for a batch, on the shipped
// INT4 model (the 16-bit-activation kernels) and an FP32 golden model.
//
// The claim is about the optimised build users run: unoptimised Swift boxes
// values in generic stdlib calls (a for-in loop allocates at -Onone), so this
// runs the release glm-alloc-check, which scripts/test builds first.

import Foundation
import GLMRuntime
import Testing

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
/// The release build of glm-alloc-check (scripts/test: swift build -c release --product glm-alloc-check).
private let allocCheck = repo.appendingPathComponent(".build/release/glm-alloc-check").path

private struct Counts: Decodable {
    let available: Bool
    let session_allocations: Int
    let batch_allocations: Int
}

private func count(_ model: String, _ extra: [String]) throws -> Counts {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: allocCheck)
    process.arguments = [model, "--steps", "6", "--batch", "3"] + extra
    process.environment = ProcessInfo.processInfo.environment.merging(["OMP_NUM_THREADS": "2"]) { _, new in new } // the parallel paths too
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    return try JSONDecoder().decode(Counts.self, from: data)
}

@Suite("Allocation-free decode", .serialized)
struct AllocationTests {
    @Test("decode steps allocate nothing after the first: a session and a batch, fused and not, built-ins and registry",
          .enabled(if: FileManager.default.isExecutableFile(atPath: allocCheck), "needs the release glm-alloc-check (scripts/test builds it)"))
    func decodeStep_allocatesNothing() throws {
        let shipped = repo.appendingPathComponent("models/glm-small-bilingual-q4.gguf").path
        let f32 = try #require(try ConvertedModels.model("glm-130b-tiny", .f32).file?.path)
        for (model, extra) in [(shipped, []), (shipped, ["--no-fusion"]), (shipped, ["--activations", "f32"]), (shipped, ["--registry"]),
                              (shipped, ["--kv-type", "f16"]), (f32, [])] {
            let counts = try count(model, extra)
            try #require(counts.available, "the counter is off in sanitizer builds")
            #expect(counts.session_allocations == 0, "\(model) \(extra)")
            #expect(counts.batch_allocations == 0, "\(model) \(extra)")
        }
    }
}
