// KernelRegistry.swift — every provider of every operation, and which one the
// runtime uses. A provider's operations are verified against the reference
// when it is registered; an operation that fails is never used. Selection:
// a forced choice (--kernel op=name, GLM_KERNEL) if any, else the
// highest-priority verified provider this CPU can run, unless it is much
// slower than the built-in (under a quarter of its speed, timed when it is registered: it is reported, and
// used only when forced). Plugins stay loaded until exit (never unloaded).

import Foundation
import KernelBridge

public final class KernelRegistry: @unchecked Sendable {
    // @unchecked: mutated only while the program sets itself up, on one thread.
    public private(set) var providers: [any KernelProvider] = []
    /// (provider, operation) pairs that passed verification.
    private var verified: Set<String> = []
    public private(set) var results: [VerificationResult] = []
    private var forced: [String: String] = [:]
    /// (provider, operation) pairs that passed but run below `slowRatio` of the built-in's speed.
    private var slow: Set<String> = []
    /// Speed relative to the best built-in, per (provider, operation) timed at registration.
    public private(set) var speeds: [String: Double] = [:]
    /// Below this fraction of the built-in's speed a provider is not chosen on priority alone.
    public static let slowRatio = 0.25

    /// A registry holding the built-in providers of every instruction set this CPU runs;
    /// `activations` is the precision their INT4 mat-vecs take activations in.
    public init(activations: ActivationPrecision = .default) throws {
        for isa in InstructionSet.supported {
            let builtin = try BuiltinProvider(isa: isa, activations: activations)
            providers.append(builtin)
            // the scalar reference is the yardstick; the SIMD built-ins are verified by the test suite
            for op in builtin.operations { verified.insert(Self.key(builtin.name, op)) }
        }
    }

    private static func key(_ provider: String, _ operation: String) -> String { provider + "\u{0}" + operation }

    /// Verifies and registers `provider`. Returns one result per operation; failed
    /// operations are recorded and never selected. Throws only for a duplicate name.
    @discardableResult
    public func register(_ provider: any KernelProvider) throws -> [VerificationResult] {
        guard !providers.contains(where: { $0.name == provider.name }) else { throw PluginError.duplicateProvider(name: provider.name) }
        let outcome = provider.operations.sorted().filter(provider.canRun).map { Verifier.verify(provider, operation: $0) }
        let builtin = providers.filter { $0 is BuiltinProvider }.max { $0.priority < $1.priority }
        for r in outcome where r.passed {
            verified.insert(Self.key(provider.name, r.operation))
            if let builtin, builtin.operations.contains(r.operation),
               let speed = try? Verifier.speedup(provider, over: builtin, operation: r.operation, quick: true), speed.isFinite {
                speeds[Self.key(provider.name, r.operation)] = speed
                if speed < Self.slowRatio { slow.insert(Self.key(provider.name, r.operation)) }
            }
        }
        results += outcome
        providers.append(provider)
        return outcome
    }

    /// Loads a C plugin. An explicit plugin (--plugin) that cannot be used is an
    /// error; one found on GLM_PLUGIN_PATH is skipped, reported through `warn`.
    public func loadPlugin(path: String, explicit: Bool, warn: (String) -> Void = { _ in }) throws {
        do {
            let plugin = try CPluginProvider(path: path)
            let outcome = try register(plugin)
            if let failure = outcome.first(where: { !$0.passed }) {
                throw PluginError.verificationFailed(provider: "\(path) (\(plugin.name))", operation: failure.operation,
                                                     detail: failure.failure ?? "failed")
            }
        } catch {
            if explicit { throw error }
            warn("warning: skipping plugin \(path): \(error)")
        }
    }

    /// Every shared library in the folders of GLM_PLUGIN_PATH (colon-separated).
    public func loadPluginPath(_ value: String?, warn: (String) -> Void) {
        guard let value, !value.isEmpty else { return }
        for folder in value.split(separator: ":").map(String.init) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                warn("warning: GLM_PLUGIN_PATH folder \(folder) cannot be read")
                continue
            }
            for name in names.sorted() where name.hasSuffix(".so") || name.hasSuffix(".dylib") {
                try? loadPlugin(path: (folder as NSString).appendingPathComponent(name), explicit: false, warn: warn)
            }
        }
    }

    /// Forces `provider` for `operation`; the provider must implement it and have passed verification.
    public func force(_ operation: String, provider: String) throws {
        let candidates = providers.filter { $0.operations.contains(operation) && $0.canRun(operation) && verified.contains(Self.key($0.name, operation)) }
        guard candidates.contains(where: { $0.name == provider }) else {
            throw PluginError.unknownProvider(name: provider, operation: operation, known: candidates.map(\.name))
        }
        forced[operation] = provider
    }

    /// Parses "op=provider,op=provider" (the --kernel option and GLM_KERNEL) and forces each.
    public func force(options: [String]) throws {
        for text in options.flatMap({ $0.split(separator: ",").map(String.init) }) where !text.isEmpty {
            let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw PluginError.badKernelOption(text) }
            try force(parts[0], provider: parts[1])
        }
    }

    /// The provider the runtime uses for `operation` on this machine.
    public func choice(for operation: String) -> any KernelProvider {
        if let name = forced[operation], let p = providers.first(where: { $0.name == name }) { return p }
        let usable = providers.filter {
            $0.operations.contains(operation) && $0.canRun(operation) && verified.contains(Self.key($0.name, operation))
                && !slow.contains(Self.key($0.name, operation))
        }
        return usable.max { $0.priority < $1.priority }!
    }

    /// The speed of `provider` on `operation` relative to the best built-in, when it was timed.
    public func speed(of provider: String, for operation: String) -> Double? { speeds[Self.key(provider, operation)] }

    /// Whether `provider` passed on `operation` but is too slow to be chosen unless forced.
    public func isSlow(_ provider: String, for operation: String) -> Bool { slow.contains(Self.key(provider, operation)) }

    /// Providers that implement `operation` (verified or not), for listings.
    public func providers(for operation: String) -> [(provider: any KernelProvider, usable: Bool)] {
        providers.filter { $0.operations.contains(operation) }.map {
            ($0, $0.canRun(operation) && verified.contains(Self.key($0.name, operation)))
        }
    }

    /// A kernel set routing every operation to its chosen provider.
    public func dispatcher() -> KernelDispatcher {
        KernelDispatcher(table: Dictionary(uniqueKeysWithValues: OperationName.all.map { ($0, choice(for: $0)) }))
    }
}
