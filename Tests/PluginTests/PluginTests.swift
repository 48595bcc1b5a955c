// PluginTests.swift — the kernel registry: built-in providers, a Swift
// provider registered in code, the example C plugin built from its source
// here, forcing a provider, and every way a plugin can be unusable (each
// broken variant is compiled from the example's source with one
// EXAMPLE_PLUGIN_BREAK_* macro set).

import Foundation
import GLMRuntime
import KernelBridge
import Plugins
import Testing

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let buildDir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-plugins-\(getpid())")

/// Compiles the example plugin with `defines`; returns the .so path. Compile and
/// link are separate steps: clang's -fopenmp would link -lomp, which Debian
/// ships as libomp5.so.
private func buildPlugin(_ name: String, defines: [String] = []) throws -> String {
    try FileManager.default.createDirectory(at: buildDir, withIntermediateDirectories: true)
    let output = buildDir.appendingPathComponent("lib\(name).so").path
    if FileManager.default.fileExists(atPath: output) { return output }
    let object = output + ".o"
    try clang(["-c", "-fPIC", "-O2", "-fopenmp",
               "-I", repo.appendingPathComponent("Sources/GLMPluginABI/include").path,
               "-I", repo.appendingPathComponent("Sources/ExamplePlugin/include").path]
        + defines.map { "-D\($0)" }
        + [repo.appendingPathComponent("Sources/ExamplePlugin/q4_0_matvec_4rows.c").path, "-o", object], name)
    try clang(["-shared", object, "-o", output, "-lomp5"], name)
    return output
}

private func clang(_ arguments: [String], _ name: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["clang"] + arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw PluginError.malformed(path: name, reason: "clang \(arguments.first ?? "") failed") }
}

private func message(_ body: () throws -> Void) -> String {
    do { try body(); return "no error" } catch { return "\(error)" }
}

/// A Swift provider registered in code: GeLU (erf) computed by the reference kernels.
private struct SwiftGeLU: KernelProvider {
    let name: String
    let broken: Bool
    var version: String { "0.1" }
    var priority: Int { 50 }
    var operations: Set<String> { [OperationName.biasGeLU(.erf)] }
    func biasGeLU(_ x: [Float], bias: [Float]?, rows: Int, form: GeLUForm, into out: inout [Float]) throws {
        try Kernels(isa: .scalar).biasGeLU(x, bias: bias, rows: rows, form: form, into: &out)
        if broken { out = out.map { $0 * 1.001 } }
    }
}

@Suite("Kernel plugins", .serialized)
struct PluginTests {
    @Test("the built-ins serve every operation, the best instruction set chosen")
    func builtins_serveEveryOperation() throws {
        let registry = try KernelRegistry()
        for op in OperationName.all { #expect(registry.choice(for: op).name == "builtin.\(InstructionSet.best.rawValue)") }
    }

    @Test("a Swift provider is verified, chosen by priority, and a wrong one is rejected")
    func swiftProvider_registeredInCode() throws {
        let registry = try KernelRegistry()
        let results = try registry.register(SwiftGeLU(name: "swift-gelu", broken: false))
        #expect(results.allSatisfy { $0.passed })
        #expect(registry.choice(for: "bias_gelu.erf").name == "swift-gelu")
        let rejected = try registry.register(SwiftGeLU(name: "swift-gelu-broken", broken: true))
        #expect(rejected.first?.passed == false)
        #expect(rejected.first?.failure?.contains("normalised error") == true, "\(rejected.first?.failure ?? "")")
        #expect(registry.choice(for: "bias_gelu.erf").name == "swift-gelu")
        #expect(throws: PluginError.self) { try registry.register(SwiftGeLU(name: "swift-gelu", broken: false)) }
    }

    @Test("the example plugin loads, passes verification, is chosen and can be overridden")
    func examplePlugin_isLoadedAndChosen() throws {
        guard InstructionSet.avx2.isSupported else { return } // the example kernel needs AVX2
        let path = try buildPlugin("example")
        let registry = try KernelRegistry()
        try registry.loadPlugin(path: path, explicit: true)
        // chosen on its priority, unless it is much slower than the best built-in (on an
        // AVX-512 machine the built-in q4_0 mat-vec outruns this AVX2 example), which the
        // registry measures when it registers it
        if registry.isSlow("example-q4", for: "matvec.q4_0") {
            print("example-q4 runs at \(registry.speed(of: "example-q4", for: "matvec.q4_0") ?? .nan)x the built-in: not chosen")
            #expect(registry.choice(for: "matvec.q4_0").name == "builtin.\(InstructionSet.best.rawValue)")
        } else {
            #expect(registry.choice(for: "matvec.q4_0").name == "example-q4")
        }
        #expect(registry.choice(for: "matvec.q8_0").name.hasPrefix("builtin"))
        try registry.force(options: ["matvec.q4_0=builtin.scalar"])
        #expect(registry.choice(for: "matvec.q4_0").name == "builtin.scalar")
        #expect(throws: PluginError.self) { try registry.force(options: ["matvec.q4_0"]) }
        #expect(throws: PluginError.self) { try registry.force(options: ["matvec.q4_0=nobody"]) }
    }

    @Test("a model gives the same greedy tokens with the plugin as with the built-ins")
    func examplePlugin_sameTokensAsBuiltin() throws {
        guard InstructionSet.avx2.isSupported else { return }
        let registry = try KernelRegistry()
        try registry.loadPlugin(path: try buildPlugin("example"), explicit: true)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-plugin-model-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let folder = repo.appendingPathComponent("Tests/Fixtures/chatglm-6b-tiny").path
        _ = try ModelConverter(type: .q4_0).convert(folder: folder, to: dir + "/model.gguf")
        let model = try GLMModel(path: dir + "/model.gguf")
        func greedy(_ kernels: any KernelSet) throws -> [Int32] {
            let session = try InferenceSession(model: model, capacity: 64, kernels: kernels)
            var logits = try session.forward([488, 1151, 1154])
            var tokens: [Int32] = []
            for _ in 0..<8 {
                let next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
                tokens.append(next)
                logits = try session.forward([next])
            }
            return tokens
        }
        let dispatcher = registry.dispatcher()
        #expect(dispatcher.provider(for: "matvec.q4_0")?.name == "example-q4",
                "speed \(registry.speed(of: "example-q4", for: "matvec.q4_0") ?? .nan)x the built-in")
        #expect(try greedy(dispatcher) == greedy(Kernels()))
    }

    @Test("bad plugins fail with one message naming the file and the reason")
    func badPlugins_failClearly() throws {
        guard InstructionSet.avx2.isSupported else { return }
        let registry = try KernelRegistry()
        func load(_ path: String) -> String { message { try registry.loadPlugin(path: path, explicit: true) } }

        #expect(load("/no/such/plugin.so").contains("plugin file not found"))
        let text = buildDir.appendingPathComponent("not-a-library.so").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: text))
        #expect(load(text).contains("not a loadable shared library"))
        #expect(load(try buildPlugin("no-entry", defines: ["EXAMPLE_PLUGIN_BREAK_MISSING_ENTRY"])).contains("no 'glm_plugin_init' symbol"))
        #expect(load(try buildPlugin("abi", defines: ["EXAMPLE_PLUGIN_BREAK_ABI_VERSION"])).contains("plugin ABI version 2, runtime ABI version 1"))
        #expect(load(try buildPlugin("size", defines: ["EXAMPLE_PLUGIN_BREAK_STRUCT_SIZE"])).contains("struct size"))
        #expect(load(try buildPlugin("null", defines: ["EXAMPLE_PLUGIN_BREAK_NULL_FUNCTION"])).contains("null function pointer"))
        #expect(load(try buildPlugin("unknown-op", defines: ["EXAMPLE_PLUGIN_BREAK_UNKNOWN_OPERATION"])).contains("unknown operation 'matvec.q3_k'"))
        let wrong = try buildPlugin("wrong", defines: ["EXAMPLE_PLUGIN_BREAK_RESULTS"])
        let failure = load(wrong)
        #expect(failure.contains("matvec.q4_0 failed verification") && failure.contains("normalised error"), "\(failure)")
        #expect(failure.contains(wrong))
        // the wrong kernel is never used
        #expect(registry.choice(for: "matvec.q4_0").name.hasPrefix("builtin"))
    }

    @Test("an unusable plugin on GLM_PLUGIN_PATH is skipped with a warning")
    func pluginPath_skipsBadPlugins() throws {
        guard InstructionSet.avx2.isSupported else { return }
        let folder = buildDir.appendingPathComponent("path").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, defines) in [("wrong", ["EXAMPLE_PLUGIN_BREAK_RESULTS"]), ("abi", ["EXAMPLE_PLUGIN_BREAK_ABI_VERSION"])] {
            let built = try buildPlugin(name, defines: defines)
            let target = folder + "/lib\(name).so"
            if !FileManager.default.fileExists(atPath: target) { try FileManager.default.copyItem(atPath: built, toPath: target) }
        }
        let registry = try KernelRegistry()
        var warnings: [String] = []
        registry.loadPluginPath(folder + ":/no/such/folder") { warnings.append($0) }
        #expect(warnings.count == 3, "\(warnings)")
        #expect(warnings.contains { $0.contains("ABI version") })
        #expect(warnings.contains { $0.contains("failed verification") })
        #expect(registry.choice(for: "matvec.q4_0").name.hasPrefix("builtin"))
    }

    @Test("a plugin cannot lie its way in: NULL bias, overruns, NaN on large shapes, shared state",
          arguments: [("null-bias", "EXAMPLE_PLUGIN_BREAK_NULL_BIAS", "crashed with signal 11 (SIGSEGV)"),
                      ("overrun", "EXAMPLE_PLUGIN_BREAK_OVERRUN", "past its"),
                      ("nan-large", "EXAMPLE_PLUGIN_BREAK_NAN_LARGE", "produced nan"),
                      ("racy", "EXAMPLE_PLUGIN_BREAK_RACY", "two threads at once")])
    func lyingPlugins_areRejected(name: String, define: String, expected: String) throws {
        guard InstructionSet.avx2.isSupported else { return }
        let registry = try KernelRegistry()
        let path = try buildPlugin(name, defines: [define])
        let failure = message { try registry.loadPlugin(path: path, explicit: true) }
        #expect(failure.contains("matvec.q4_0 failed verification") && failure.contains(expected), "\(failure)")
        #expect(registry.choice(for: "matvec.q4_0").name.hasPrefix("builtin"))
    }

    @Test("a plugin much slower than the built-in is reported and used only when forced")
    func slowPlugin_isNotPreferred() throws {
        guard InstructionSet.avx2.isSupported else { return }
        // under a sanitizer the built-ins are instrumented and the plugin is not: no speed to compare
        guard ProcessInfo.processInfo.environment["GLM_SANITIZER"] == nil else { return }
        let registry = try KernelRegistry()
        try registry.loadPlugin(path: try buildPlugin("slow", defines: ["EXAMPLE_PLUGIN_BREAK_SLOW"]), explicit: true)
        let speed = try #require(registry.speed(of: "example-q4", for: "matvec.q4_0"))
        #expect(speed < KernelRegistry.slowRatio, "\(speed)")
        #expect(registry.isSlow("example-q4", for: "matvec.q4_0"))
        #expect(registry.choice(for: "matvec.q4_0").name.hasPrefix("builtin"))
        try registry.force(options: ["matvec.q4_0=example-q4"])
        #expect(registry.choice(for: "matvec.q4_0").name == "example-q4")
    }

    @Test("a plugin's first calls at run time are checked for finite output")
    func runtimeNaN_isCaught() throws {
        guard InstructionSet.avx2.isSupported else { return }
        let registry = try KernelRegistry()
        try registry.loadPlugin(path: try buildPlugin("nan-runtime", defines: ["EXAMPLE_PLUGIN_BREAK_NAN_AT_RUNTIME"]), explicit: true)
        #expect(registry.choice(for: "matvec.q4_0").name == "example-q4")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("glm-plugin-nan-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ModelConverter(type: .q4_0).convert(folder: repo.appendingPathComponent("Tests/Fixtures/chatglm-6b-tiny").path, to: dir + "/model.gguf")
        let session = try InferenceSession(model: try GLMModel(path: dir + "/model.gguf"), capacity: 8, kernels: registry.dispatcher())
        let failure = message {
            _ = try session.forward([488, 1151, 1154])
            _ = try session.forward([5])
        }
        #expect(failure.contains("example-q4") && failure.contains("returned nan"), "\(failure)")
    }
}
