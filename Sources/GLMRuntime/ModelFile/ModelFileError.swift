// ModelFileError.swift — everything that can be wrong with a model file or a
// checkpoint, each case naming the file and the key or tensor involved.

public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case notGGUF(file: String, magic: String)
    case unsupportedVersion(file: String, version: UInt32)
    case truncated(file: String, what: String)
    case malformed(file: String, what: String)
    case missingKey(file: String, key: String)
    case wrongKeyType(file: String, key: String, expected: String, actual: String)
    case unknownArchitecture(file: String, name: String, known: [String])
    case missingTensor(file: String, tensor: String)
    case tensorShape(file: String, tensor: String, expected: [Int], actual: [Int])
    case tensorType(file: String, tensor: String, type: String)
    case tensorOutsideFile(file: String, tensor: String)
    case badConfig(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .notGGUF(file, magic): return "\(file): not a GGUF file (magic \(magic), expected GGUF)"
        case let .unsupportedVersion(file, version): return "\(file): GGUF version \(version) is not supported (2 or 3)"
        case let .truncated(file, what): return "\(file): truncated while reading \(what)"
        case let .malformed(file, what): return "\(file): malformed: \(what)"
        case let .missingKey(file, key): return "\(file): missing metadata key '\(key)'"
        case let .wrongKeyType(file, key, expected, actual): return "\(file): key '\(key)' is \(actual), expected \(expected)"
        case let .unknownArchitecture(file, name, known):
            return "\(file): unknown architecture '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .missingTensor(file, tensor): return "\(file): missing tensor '\(tensor)'"
        case let .tensorShape(file, tensor, expected, actual): return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .tensorType(file, tensor, type): return "\(file): tensor '\(tensor)' has unsupported type \(type)"
        case let .tensorOutsideFile(file, tensor): return "\(file): tensor '\(tensor)' lies outside the file"
        case let .badConfig(file, reason): return "\(file): \(reason)"
        }
    }
}
