// KernelCatalog.swift — the operations the runtime runs and, for this CPU,
// which built-in implementation each one uses. This is the seed of the kernel
// registry (issue 4): today the only providers are the built-in C tables, and
// the best supported instruction set serves every operation.

import KernelBridge

public struct KernelChoice: Sendable, Equatable {
    public let operation: String
    public let instructionSet: InstructionSet
}

public enum KernelCatalog {
    /// Every operation of the C kernel table, products named per weight type.
    public static var operations: [String] {
        let products = WeightType.allCases.flatMap { ["matvec.\($0.rawValue)", "matmul.\($0.rawValue)"] }
        let lookups = WeightType.allCases.map { "embedding.\($0.rawValue)" }
        return products + lookups + ["attention", "residual_layernorm", "bias_geglu", "bias_gelu.erf", "bias_gelu.tanh", "rope.1d", "rope.2d"]
    }

    /// The implementation each operation uses here: every operation exists for
    /// every instruction set, so the best one this CPU runs serves them all.
    public static func choices(isa: InstructionSet = .best) -> [KernelChoice] {
        operations.map { KernelChoice(operation: $0, instructionSet: isa) }
    }
}
