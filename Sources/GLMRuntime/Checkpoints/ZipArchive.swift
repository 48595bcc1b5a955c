// ZipArchive.swift — the ZIP container torch.save writes (stored entries,
// Zip64 for files over 4 GB), read from a memory map: the central directory
// is parsed once, entries are found by name, and every offset and size is
// checked against the file. Compressed entries are refused: torch never
// writes them.

import Foundation

public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case corruptZip(file: String, reason: String)
    case unsupportedPickle(file: String, found: String)
    case corruptPickle(file: String, reason: String)
    case missingEntry(file: String, entry: String)
    case missingRank(folder: String, file: String)
    case rankMismatch(tensor: String, reason: String)
    case noConfig(folder: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .corruptZip(file, reason): return "\(file): not a valid torch checkpoint archive: \(reason)"
        case let .unsupportedPickle(file, found): return "\(file): refused: the pickle contains \(found), which a state dict never needs (nothing was executed)"
        case let .corruptPickle(file, reason): return "\(file): malformed pickle: \(reason)"
        case let .missingEntry(file, entry): return "\(file): no '\(entry)' in the archive"
        case let .missingRank(folder, file): return "\(folder): missing tensor-parallel rank file \(file)"
        case let .rankMismatch(tensor, reason): return "tensor-parallel ranks disagree on '\(tensor)': \(reason)"
        case let .noConfig(folder): return "\(folder): a SAT checkpoint carries no configuration: give --config config.json or --preset glm-130b (none found beside or above the folder)"
        }
    }
}

public final class ZipArchive {
    public struct Entry { public let name: String; let dataOffset: Int; public let size: Int }

    public let path: String
    let file: MappedFile
    public let entries: [String: Entry]

    public init(path: String) throws {
        self.path = path
        let name = path.lastPathComponentForErrors
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw CheckpointError.unreadable(file: name, reason: "\(error)") }
        self.file = file
        func fail(_ reason: String) -> CheckpointError { .corruptZip(file: name, reason: reason) }
        func u16(_ o: Int) throws -> Int { guard let v = file.load(UInt16.self, at: o) else { throw fail("truncated at byte \(o)") }; return Int(v) }
        func u32(_ o: Int) throws -> Int { guard let v = file.load(UInt32.self, at: o) else { throw fail("truncated at byte \(o)") }; return Int(v) }
        func u64(_ o: Int) throws -> Int {
            guard let v = file.load(UInt64.self, at: o), v < UInt64(Int.max) else { throw fail("truncated or huge value at byte \(o)") }
            return Int(v)
        }

        // end of central directory: the last "PK\5\6" within 64 KiB + 22 bytes of the end
        guard file.count >= 22 else { throw fail("file shorter than a ZIP trailer") }
        var eocd = -1
        var o = file.count - 22
        while o >= max(0, file.count - 22 - 65535) {
            if try u32(o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (truncated?)") }
        var count = try u16(eocd + 10), cdSize = try u32(eocd + 12), cdOffset = try u32(eocd + 16)
        // Zip64: the locator sits right before the classic record
        if eocd >= 20, try u32(eocd - 20) == 0x0706_4B50 {
            let z = try u64(eocd - 20 + 8)
            guard try u32(z) == 0x0606_4B50 else { throw fail("bad Zip64 end-of-central-directory record") }
            count = try u64(z + 32)
            cdSize = try u64(z + 40)
            cdOffset = try u64(z + 48)
        }
        guard cdOffset <= file.count, cdSize <= file.count - cdOffset, count <= cdSize / 46 + 1 else {
            throw fail("central directory outside the file")
        }
        var entries: [String: Entry] = [:]
        var p = cdOffset
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4B50 else { throw fail("bad central directory entry at byte \(p)") }
            let method = try u16(p + 10)
            var compressed = try u32(p + 20), size = try u32(p + 24)
            let nameLength = try u16(p + 28), extraLength = try u16(p + 30), commentLength = try u16(p + 32)
            var local = try u32(p + 42)
            guard let nameBytes = file.bytes(at: p + 46, count: nameLength) else { throw fail("truncated entry name") }
            let entryName = String(decoding: nameBytes, as: UTF8.self)
            // Zip64 extra field (id 1): 8-byte values for each field stored as 0xFFFFFFFF, in order
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try u16(e), length = try u16(e + 2)
                if id == 1 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = try u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try u64(q); q += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(q) }
                }
                e += 4 + length
            }
            guard method == 0 else { throw fail("entry '\(entryName)' is compressed (method \(method)); torch.save stores entries uncompressed") }
            guard compressed == size else { throw fail("entry '\(entryName)' sizes disagree") }
            guard try u32(local) == 0x0403_4B50 else { throw fail("bad local header for '\(entryName)'") }
            let dataOffset = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
            guard dataOffset <= file.count, size <= file.count - dataOffset else { throw fail("entry '\(entryName)' runs past the end of the file") }
            entries[entryName] = Entry(name: entryName, dataOffset: dataOffset, size: size)
            p += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }

    /// The entry whose name ends with `suffix` (torch prefixes entries with an archive name).
    public func entry(endingWith suffix: String) throws -> Entry {
        let matches = entries.values.filter { $0.name == suffix || $0.name.hasSuffix("/" + suffix) }
        guard matches.count == 1 else { throw CheckpointError.missingEntry(file: path.lastPathComponentForErrors, entry: suffix) }
        return matches[0]
    }

    public func bytes(_ entry: Entry, offset: Int = 0, count: Int? = nil) throws -> [UInt8] {
        let length = count ?? entry.size - offset
        guard offset >= 0, length >= 0, offset + length <= entry.size, let b = file.bytes(at: entry.dataOffset + offset, count: length) else {
            throw CheckpointError.corruptZip(file: path.lastPathComponentForErrors, reason: "read outside entry '\(entry.name)'")
        }
        return b
    }

    /// Drops the pages of `entry` from memory once read (conversion streams through huge files).
    public func release(_ entry: Entry) { file.release(offset: entry.dataOffset, count: entry.size) }
}
