// CPluginProvider.swift — a kernel provider loaded from a shared library with
// the C ABI of glm_plugin.h: dlopen, the entry symbol, the ABI version and
// struct size checked first, then each kernel's operation and function
// pointer. Plugins are never unloaded (their code may run until exit).
//
// A plugin is native code inside the process: nothing here is a sandbox.
// Two checks catch mistakes: the verifier calls a `verifying()` copy, which
// puts guard words around the output, checks the inputs are left alone and
// turns a crash on the calling thread into an error; and at run time the
// first calls of each kernel are checked for finite output.

import Foundation
import GLMPluginABI
import KernelBridge

public struct CPluginProvider: KernelProvider, @unchecked Sendable {
    // @unchecked: the plugin's tables are immutable static data by contract (glm_plugin.h).
    public let path: String
    public let name: String
    public let version: String
    public let priority: Int
    public let operations: Set<String>
    private let matvecs: [String: glm_plugin_matvec_fn]
    private let matmuls: [String: glm_plugin_matmul_fn]
    private let needsAVX2: Set<String>
    /// Verification mode: guarded calls (see verifying()).
    public private(set) var isVerifying = false
    private let firstCalls = FirstCalls()

    /// Floats of guard words on each side of an output during verification.
    static let guardFloats = 64
    /// Calls per operation whose output is checked for NaN and infinity at run time.
    static let checkedCalls = 16

    /// Loads and checks the plugin at `path`; throws PluginError naming the file and the problem.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw PluginError.notFound(path: path) }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginError.notALibrary(path: path, reason: dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        guard let symbol = dlsym(handle, GLM_PLUGIN_ENTRY) else {
            throw PluginError.missingEntry(path: path, symbol: GLM_PLUGIN_ENTRY)
        }
        let initialise = unsafeBitCast(symbol, to: glm_plugin_init_fn.self)
        guard let plugin = initialise()?.pointee else { throw PluginError.malformed(path: path, reason: "\(GLM_PLUGIN_ENTRY) returned NULL") }
        guard plugin.abi_version == UInt32(GLM_PLUGIN_ABI_VERSION) else {
            throw PluginError.abiVersion(path: path, plugin: plugin.abi_version, runtime: UInt32(GLM_PLUGIN_ABI_VERSION))
        }
        guard plugin.struct_size == UInt32(MemoryLayout<glm_plugin>.size) else {
            throw PluginError.structSize(path: path, plugin: plugin.struct_size, runtime: UInt32(MemoryLayout<glm_plugin>.size))
        }
        guard let rawName = plugin.name, let rawVersion = plugin.version else {
            throw PluginError.malformed(path: path, reason: "name or version is NULL")
        }
        guard plugin.kernel_count > 0, plugin.kernel_count < 4096, let table = plugin.kernels else {
            throw PluginError.malformed(path: path, reason: "\(plugin.kernel_count) kernels")
        }
        var matvecs: [String: glm_plugin_matvec_fn] = [:], matmuls: [String: glm_plugin_matmul_fn] = [:]
        var needsAVX2: Set<String> = []
        let known = Set(OperationName.all)
        for i in 0..<Int(plugin.kernel_count) {
            let kernel = table[i]
            guard let rawOperation = kernel.operation else { throw PluginError.malformed(path: path, reason: "kernel \(i) has no operation name") }
            let operation = String(cString: rawOperation)
            guard known.contains(operation), operation.hasPrefix("matvec.") || operation.hasPrefix("matmul.") else {
                throw PluginError.unknownOperation(path: path, operation: operation)
            }
            if operation.hasPrefix("matvec.") {
                guard let fn = kernel.matvec else { throw PluginError.nullFunction(path: path, operation: operation) }
                matvecs[operation] = fn
            } else {
                guard let fn = kernel.matmul else { throw PluginError.nullFunction(path: path, operation: operation) }
                matmuls[operation] = fn
            }
            if kernel.isa_required & UInt32(GLM_PLUGIN_ISA_AVX2_FMA) != 0 { needsAVX2.insert(operation) }
        }
        self.path = path
        name = String(cString: rawName)
        version = String(cString: rawVersion)
        priority = Int(plugin.priority)
        operations = Set(matvecs.keys).union(matmuls.keys)
        self.matvecs = matvecs
        self.matmuls = matmuls
        self.needsAVX2 = needsAVX2
    }

    /// A copy whose calls are guarded, for verification: OpenMP limited to one
    /// thread is the caller's business (Verifier does it) so that a crash happens
    /// on the calling thread, where it is caught.
    public func verifying() -> CPluginProvider {
        var copy = self
        copy.isVerifying = true
        return copy
    }

    public func canRun(_ operation: String) -> Bool {
        operations.contains(operation) && (!needsAVX2.contains(operation) || InstructionSet.avx2.isSupported)
    }

    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        let op = OperationName.matvec(w.type)
        guard let fn = matvecs[op] else { throw unsupported(op) }
        try KernelErrorShapes.product(op, w, x, tokens: 1, bias: bias, y: y)
        try call(op, w, x, bias: bias, into: &y) { matrix, yp, xp, bp, guarded in
            guarded ? glm_plugin_host_call_matvec(fn, yp, matrix, xp, bp) : fn(yp, matrix, xp, bp)
        }
    }

    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        let op = OperationName.matmul(w.type)
        guard let fn = matmuls[op] else { throw unsupported(op) }
        try KernelErrorShapes.product(op, w, x, tokens: m, bias: bias, y: y)
        let (rows, cols) = (Int64(w.rows), Int64(w.cols))
        try call(op, w, x, bias: bias, into: &y) { matrix, yp, xp, bp, guarded in
            guarded ? glm_plugin_host_call_matmul(fn, yp, rows, matrix, xp, cols, Int64(m), bp) : fn(yp, rows, matrix, xp, cols, Int64(m), bp)
        }
    }

    private typealias Invoke = (UnsafePointer<glm_plugin_matrix>, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                UnsafePointer<Float>?, Bool) -> Int32

    /// Runs one kernel call: guarded while verifying, then with its first outputs checked.
    private func call(_ op: String, _ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float], _ invoke: Invoke) throws {
        if isVerifying {
            try guardedCall(op, w, x, bias: bias, into: &y, invoke)
            return
        }
        let status = w.withRawParts { parts in
            var matrix = glm_plugin_matrix(parts)
            return x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in withBias(bias) { invoke(&matrix, yp.baseAddress, xp.baseAddress, $0, false) } }
            }
        }
        guard status == 0 else { throw KernelError.invalidArgument(operation: op, detail: "plugin '\(name)' returned error \(status)") }
        if firstCalls.shouldCheck(op), let bad = y.firstIndex(where: { !$0.isFinite }) {
            throw KernelError.invalidArgument(operation: op, detail: "plugin '\(name)' (\(path)) returned \(y[bad]) at output \(bad) of \(w.rows)x\(w.cols): it passed verification, but is not trusted with this shape")
        }
    }

    /// The output between guard words, copies of the inputs compared after the call, a crash caught.
    private func guardedCall(_ op: String, _ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float], _ invoke: Invoke) throws {
        let g = CPluginProvider.guardFloats
        let canary = Float(bitPattern: 0x7FC0_DEAD)   // a NaN no kernel computes
        var padded = [Float](repeating: canary, count: y.count + 2 * g)
        let (xCopy, biasCopy) = (x, bias)
        var status: Int32 = 0
        w.withRawParts { parts in
            var matrix = glm_plugin_matrix(parts)
            x.withUnsafeBufferPointer { xp in
                padded.withUnsafeMutableBufferPointer { pp in
                    status = withBias(bias) { invoke(&matrix, pp.baseAddress! + g, xp.baseAddress, $0, true) }
                }
            }
        }
        func fail(_ detail: String) -> KernelError { .invalidArgument(operation: op, detail: "plugin '\(name)' \(detail)") }
        if status < 0 { throw fail("crashed with signal \(-status) (\(Self.signalName(-status))) on \(w.rows)x\(w.cols)\(bias == nil ? " with a NULL bias" : "")") }
        guard status == 0 else { throw fail("returned error \(status) on \(w.rows)x\(w.cols)\(bias == nil ? " with a NULL bias" : "")") }
        let before = padded[..<g].filter { $0.bitPattern != canary.bitPattern }.count
        let after = padded[(g + y.count)...].filter { $0.bitPattern != canary.bitPattern }.count
        guard before == 0, after == 0 else {
            throw fail("wrote \(before) floats before and \(after) past its \(y.count)-float output (\(w.rows)x\(w.cols))")
        }
        guard x.elementsEqual(xCopy, by: { $0.bitPattern == $1.bitPattern }),
              bias.map({ b in b.elementsEqual(biasCopy!, by: { $0.bitPattern == $1.bitPattern }) }) ?? true else {
            throw fail("changed its input x or bias (\(w.rows)x\(w.cols))")
        }
        y = Array(padded[g..<(g + y.count)])
    }

    private static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: return "SIGSEGV"
        case SIGBUS: return "SIGBUS"
        case SIGFPE: return "SIGFPE"
        case SIGILL: return "SIGILL"
        default: return "signal"
        }
    }
}

/// How many calls of each operation have had their output checked.
private final class FirstCalls: @unchecked Sendable {
    // @unchecked: every access holds the lock.
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    func shouldCheck(_ op: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let n = counts[op, default: 0]
        guard n < CPluginProvider.checkedCalls else { return false }
        counts[op] = n + 1
        return true
    }
}

extension glm_plugin_matrix {
    init(_ p: RawMatrixParts) {
        self.init(type: p.type, rows: p.rows, cols: p.cols, group: p.group, data: p.data, row_bytes: p.rowBytes, scales: p.scales)
    }
}

private func withBias<R>(_ bias: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let bias else { return body(nil) }
    return bias.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The size checks every product applies before calling C (as Kernels does).
enum KernelErrorShapes {
    static func product(_ op: String, _ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, y: [Float]) throws {
        // arrays may be longer than the shape (a session's buffers are sized for its largest chunk)
        guard m > 0, x.count >= m * w.cols, y.count >= m * w.rows, bias.map({ $0.count == w.rows }) ?? true else {
            throw KernelError.shapeMismatch(operation: op, argument: "x/y/bias", expected: m * w.cols, actual: x.count)
        }
    }
}
