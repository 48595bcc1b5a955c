// TopologyCommand.swift — `glm-run topology`: cores, caches, NUMA, threads, and
// the instruction set each kernel will use on this machine.

import ArgumentParser
import Foundation
import KernelBridge
import Plugins

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show cores, caches, NUMA nodes, threads and the kernels this CPU will use."
    )

    @Option(name: .shortAndLong, help: "Threads to report and configure (default: one per physical core, or OMP_NUM_THREADS).")
    var threads: Int?

    @Flag(help: "Bind OpenMP thread i to physical core i (through hwloc).")
    var bind = false

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func run() throws {
        let topology = try Topology.query()
        try Threads.configure(count: threads, bind: bind)
        let best = InstructionSet.best
        let registry = try KernelRegistry()
        let choices = OperationName.all.map { (operation: $0, provider: registry.choice(for: $0).name) }
        if json {
            try printJSON(topology, best: best, choices: choices)
        } else {
            printTable(topology, best: best, choices: choices)
        }
    }

    private func printTable(_ t: Topology, best: InstructionSet, choices: [(operation: String, provider: String)]) {
        print("CPU:              \(t.cpuModel.isEmpty ? "unknown" : t.cpuModel)")
        print("Packages:         \(t.packages)")
        print("NUMA nodes:       \(t.numaNodes)")
        print("Physical cores:   \(t.cores)")
        print("Hardware threads: \(t.hardwareThreads)")
        print("L1d cache:        \(bytes(t.l1dBytes)) per core")
        print("L2 cache:         \(bytes(t.l2Bytes)) per core")
        print("L3 cache:         \(bytes(t.l3Bytes)) x \(t.l3Instances)")
        print("Memory:           \(bytes(t.memoryBytes))")
        let source = threads != nil ? "--threads" : (ProcessInfo.processInfo.environment["OMP_NUM_THREADS"] != nil ? "OMP_NUM_THREADS" : "one per physical core")
        print("Threads:          \(Threads.current) (\(source))\(bind ? ", bound to cores" : "")")
        print("Instruction sets: \(InstructionSet.supported.map(\.displayName).joined(separator: ", ")); kernels use \(best.displayName)")
        print("")
        print("Kernel                 Provider (built-in providers are named by instruction set)")
        for choice in choices {
            print(choice.operation.padding(toLength: 23, withPad: " ", startingAt: 0) + choice.provider)
        }
    }

    private func printJSON(_ t: Topology, best: InstructionSet, choices: [(operation: String, provider: String)]) throws {
        struct Report: Encodable {
            let topology: Topology
            let threads: Int
            let instructionSets: [String]
            let best: String
            let kernels: [String: String]
        }
        let report = Report(topology: t, threads: Threads.current,
                            instructionSets: InstructionSet.supported.map(\.displayName), best: best.displayName,
                            kernels: Dictionary(uniqueKeysWithValues: choices.map { ($0.operation, $0.provider) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    private func bytes(_ n: Int) -> String {
        if n <= 0 { return "unknown" }
        if n >= 1 << 30 { return String(format: "%.1f GiB", Double(n) / Double(1 << 30)) }
        if n >= 1 << 20 { return "\(n >> 20) MiB" }
        return "\(n >> 10) KiB"
    }
}
