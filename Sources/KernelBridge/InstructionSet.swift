// InstructionSet.swift — the kernel implementations a CPU can run, detected at
// run time (CPUID), never from the build flags.

internal import CKernels

public enum InstructionSet: String, CaseIterable, Sendable, Codable {
    /// Portable C, the reference every other path is tested against.
    case scalar
    /// x86-64 AVX2 + FMA + F16C.
    case avx2
    /// The AVX2 kernels plus 512-bit ones where they pay (AVX-512 F, BW, VL, VNNI).
    case avx512

    var cValue: glmk_isa {
        switch self {
        case .scalar: return GLMK_ISA_SCALAR
        case .avx2: return GLMK_ISA_AVX2
        case .avx512: return GLMK_ISA_AVX512
        }
    }

    /// The name users see, e.g. "avx2+fma".
    public var displayName: String { String(cString: glmk_isa_name(cValue)) }

    public var isSupported: Bool { glmk_isa_supported(cValue) != 0 }

    /// The fastest instruction set this CPU runs; `GLM_ISA=scalar` forces the reference,
    /// `GLM_ISA=avx2` the AVX2 kernels.
    public static var best: InstructionSet {
        let best = glmk_isa_best()
        return allCases.first { $0.cValue == best } ?? .scalar
    }

    /// Every instruction set this CPU runs, reference first.
    public static var supported: [InstructionSet] { allCases.filter(\.isSupported) }
}
