// KernelError.swift — every failure a kernel call can report, with the
// operation, the argument and the numbers involved.

internal import CKernels

public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// An array is too short or a dimension disagrees with another.
    case shapeMismatch(operation: String, argument: String, expected: Int, actual: Int)
    /// A value outside what the kernel accepts (a non-positive size, a bad group).
    case invalidArgument(operation: String, detail: String)
    /// A shape or type the kernel does not handle (e.g. Q4_0 with cols % 32 != 0).
    case unsupported(operation: String, detail: String)
    /// An index (token id, row) outside its table.
    case outOfRange(operation: String, detail: String)
    /// The instruction set was asked for but this CPU cannot run it.
    case instructionSetUnavailable(InstructionSet)
    /// hwloc or the operating system failed.
    case system(operation: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, arg, expected, actual):
            return "\(op): \(arg) has \(actual) elements, expected \(expected)"
        case let .invalidArgument(op, detail): return "\(op): invalid argument: \(detail)"
        case let .unsupported(op, detail): return "\(op): unsupported: \(detail)"
        case let .outOfRange(op, detail): return "\(op): out of range: \(detail)"
        case let .instructionSetUnavailable(isa): return "instruction set \(isa.displayName) is not available on this CPU"
        case let .system(op): return "\(op): system call failed"
        }
    }

    /// Turns a C status into a thrown error; `detail` says what was being attempted.
    static func check(_ status: glmk_status, _ operation: @autoclosure () -> String, _ detail: @autoclosure () -> String) throws {
        switch status {
        case GLMK_OK: return
        case GLMK_ERR_UNSUPPORTED: throw KernelError.unsupported(operation: operation(), detail: detail())
        case GLMK_ERR_OUT_OF_RANGE: throw KernelError.outOfRange(operation: operation(), detail: detail())
        case GLMK_ERR_SYSTEM: throw KernelError.system(operation: operation())
        default: throw KernelError.invalidArgument(operation: operation(), detail: detail())
        }
    }

    // The operation's name is an autoclosure: callers build it (a string per call) only when something fails.
    static func require(_ array: Int, atLeast expected: Int, _ operation: @autoclosure () -> String, _ argument: String) throws {
        if array < expected {
            throw KernelError.shapeMismatch(operation: operation(), argument: argument, expected: expected, actual: array)
        }
    }

    static func require(_ array: Int, exactly expected: Int, _ operation: @autoclosure () -> String, _ argument: String) throws {
        if array != expected {
            throw KernelError.shapeMismatch(operation: operation(), argument: argument, expected: expected, actual: array)
        }
    }
}
