// PluginError.swift — every way a plugin can be unusable, each naming the file
// (or provider) and the reason.

public enum PluginError: Error, CustomStringConvertible, Equatable {
    case notFound(path: String)
    case notALibrary(path: String, reason: String)
    case missingEntry(path: String, symbol: String)
    case abiVersion(path: String, plugin: UInt32, runtime: UInt32)
    case structSize(path: String, plugin: UInt32, runtime: UInt32)
    case malformed(path: String, reason: String)
    case unknownOperation(path: String, operation: String)
    case nullFunction(path: String, operation: String)
    case verificationFailed(provider: String, operation: String, detail: String)
    case duplicateProvider(name: String)
    case unknownProvider(name: String, operation: String, known: [String])
    case badKernelOption(String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): plugin file not found"
        case let .notALibrary(path, reason): return "\(path): not a loadable shared library: \(reason)"
        case let .missingEntry(path, symbol): return "\(path): no '\(symbol)' symbol: not a GLMRuntime plugin"
        case let .abiVersion(path, plugin, runtime): return "\(path): plugin ABI version \(plugin), runtime ABI version \(runtime): rebuild the plugin against this runtime's glm_plugin.h"
        case let .structSize(path, plugin, runtime): return "\(path): plugin struct size \(plugin) bytes, runtime expects \(runtime): rebuild the plugin"
        case let .malformed(path, reason): return "\(path): malformed plugin: \(reason)"
        case let .unknownOperation(path, operation): return "\(path): kernel for unknown operation '\(operation)'"
        case let .nullFunction(path, operation): return "\(path): kernel '\(operation)' has a null function pointer"
        case let .verificationFailed(provider, operation, detail): return "\(provider): \(operation) failed verification against the reference: \(detail)"
        case let .duplicateProvider(name): return "a provider named '\(name)' is already registered"
        case let .unknownProvider(name, operation, known):
            return "--kernel \(operation)=\(name): no provider '\(name)' implements \(operation) (available: \(known.joined(separator: ", ")))"
        case let .badKernelOption(text): return "--kernel '\(text)': expected operation=provider, e.g. matvec.q4_0=example-q4"
        }
    }
}
