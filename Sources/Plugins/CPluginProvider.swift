// CPluginProvider.swift — a kernel provider loaded from a shared library with
// the C ABI of glm_plugin.h: dlopen, the entry symbol, the ABI version and
// struct size checked first, then each kernel's operation and function
// pointer. Plugins are never unloaded (their code may run until exit).

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

    public func canRun(_ operation: String) -> Bool {
        operations.contains(operation) && (!needsAVX2.contains(operation) || InstructionSet.avx2.isSupported)
    }

    public func matvec(_ w: WeightMatrix, _ x: [Float], bias: [Float]?, into y: inout [Float]) throws {
        let op = OperationName.matvec(w.type)
        guard let fn = matvecs[op] else { throw unsupported(op) }
        try KernelErrorShapes.product(op, w, x, tokens: 1, bias: bias, y: y)
        let status = w.withRawParts { parts in
            var matrix = glm_plugin_matrix(parts)
            return x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withBias(bias) { fn(yp.baseAddress, &matrix, xp.baseAddress, $0) }
                }
            }
        }
        guard status == 0 else { throw KernelError.invalidArgument(operation: op, detail: "plugin '\(name)' returned error \(status)") }
    }

    public func matmul(_ w: WeightMatrix, _ x: [Float], tokens m: Int, bias: [Float]?, into y: inout [Float]) throws {
        let op = OperationName.matmul(w.type)
        guard let fn = matmuls[op] else { throw unsupported(op) }
        try KernelErrorShapes.product(op, w, x, tokens: m, bias: bias, y: y)
        let status = w.withRawParts { parts in
            var matrix = glm_plugin_matrix(parts)
            return x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    withBias(bias) { fn(yp.baseAddress, Int64(w.rows), &matrix, xp.baseAddress, Int64(w.cols), Int64(m), $0) }
                }
            }
        }
        guard status == 0 else { throw KernelError.invalidArgument(operation: op, detail: "plugin '\(name)' returned error \(status)") }
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
        guard m > 0, x.count == m * w.cols, y.count == m * w.rows, bias.map({ $0.count == w.rows }) ?? true else {
            throw KernelError.shapeMismatch(operation: op, argument: "x/y/bias", expected: m * w.cols, actual: x.count)
        }
    }
}
