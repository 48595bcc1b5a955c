// PluginsCommand.swift — `glm-run plugins`: every provider and which one each
// operation uses here; `glm-run plugins verify <plugin.so>`: per operation, the
// error against the reference and the speed relative to the built-in provider.

import ArgumentParser
import Foundation
import KernelBridge
import Plugins

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List kernel providers and the one each operation uses on this machine.",
        discussion: "Plugins come from --plugin and from the folders in GLM_PLUGIN_PATH; GLM_KERNEL and --kernel force choices.",
        subcommands: [ListPlugins.self, VerifyPlugin.self],
        defaultSubcommand: ListPlugins.self
    )
}

struct ListPlugins: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List providers and choices (the default).")
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let registry = try runtime.registry()
        print("providers:")
        for p in registry.providers {
            let kind = p is CPluginProvider ? "plugin \((p as! CPluginProvider).path)" : "built-in"
            print("  \(p.name) \(p.version), priority \(p.priority), \(p.operations.count) operations (\(kind))")
        }
        for r in registry.results where !r.passed {
            print("  rejected: \(r.provider) \(r.operation): \(r.failure ?? "failed verification")")
        }
        print("")
        print("operation              chosen            candidates")
        for op in OperationName.all {
            let chosen = registry.choice(for: op)
            let candidates = registry.providers(for: op).map { candidate -> String in
                let name = candidate.provider.name
                guard candidate.usable else { return "\(name) (unusable)" }
                guard let speed = registry.speed(of: name, for: op) else { return name }
                let note = registry.isSlow(name, for: op) ? ", too slow: used only when forced" : ""
                return String(format: "%@ (%.2fx the built-in%@)", name, speed, note)
            }
            print(Self.pad(op, 22) + " " + Self.pad(chosen.name, 17) + " " + candidates.joined(separator: ", "))
        }
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
}

struct VerifyPlugin: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Check a plugin against the reference and time it against the built-in.")
    @Argument(help: "The plugin (.so).") var plugin: String

    func run() throws {
        let provider = try CPluginProvider(path: plugin)
        print("\(provider.name) \(provider.version), priority \(provider.priority), from \(plugin)")
        let builtin = try BuiltinProvider(isa: .best)
        var failed = false
        for op in provider.operations.sorted() {
            guard provider.canRun(op) else {
                print("  \(op): needs an instruction set this CPU lacks, not verified")
                continue
            }
            let r = Verifier.verify(provider, operation: op)
            if r.passed {
                let speed = try Verifier.speedup(provider, over: builtin, operation: op)
                print(String(format: "  %@: passed, normalised error %.2e (bound %.0e); %.2fx the speed of %@", op, r.error, Verifier.bound, speed, builtin.name))
            } else {
                failed = true
                print("  \(op): FAILED: \(r.failure ?? "")")
            }
        }
        if failed { throw ExitCode(1) }
    }
}
