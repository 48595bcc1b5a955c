// CorruptionTests.swift — structure-aware corruption of every input format:
// each field of a format (GGUF metadata values, tensor dims, types and
// offsets; ZIP headers; pickle opcodes; protobuf tags and lengths;
// config.json values; safetensors header fields) is overwritten with hostile
// values (0, all ones, the sign bit, +-1, huge), and the parser must answer
// with an error or with a run whose output is finite (FuzzTargets checks the
// latter: a forward pass throws on non-finite logits). A trap, overflow or
// hang fails the suite by killing or stalling it. The same harnesses are what
// scripts/fuzz runs; here the committed corpora are replayed as well.

import Foundation
import FuzzTargets
@testable import GLMRuntime
import Testing

private let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz")

private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

/// A field of a format: where it is and how wide (bytes).
private struct Field { let offset: Int; let width: Int; let what: String }

/// Hostile rewrites of one little-endian field.
private func mutations(of data: [UInt8], _ field: Field, few: Bool = false) -> [[UInt8]] {
    let w = min(field.width, data.count - field.offset)
    guard w > 0 else { return [] }
    var value: UInt64 = 0
    for i in 0..<min(w, 8) { value |= UInt64(data[field.offset + i]) << (8 * UInt64(i)) }
    let all: [UInt64] = [0, ~0, 1 << UInt64(8 * min(w, 8) - 1), value &+ 1, value &- 1, 0x7FFF_FFFF, 1 << 40]
    let patterns = few ? [0, ~0, value &+ 1] : all
    return patterns.map { p in
        var copy = data
        for i in 0..<w { copy[field.offset + i] = i < 8 ? UInt8(truncatingIfNeeded: p >> (8 * UInt64(i))) : 0xFF }
        return copy
    }
}

/// Runs `target` over every mutation of every field; returns (runs, accepted).
private func corrupt(_ target: String, _ data: [UInt8], _ fields: [Field]) throws -> (runs: Int, accepted: Int) {
    let run = try #require(FuzzTargets.named(target)).run
    #expect(run(data), "the unmodified \(target) input must be accepted")
    var runs = 0, accepted = 0
    for field in fields {
        for mutated in mutations(of: data, field) {
            runs += 1
            if run(mutated) { accepted += 1 }
        }
    }
    return (runs, accepted)
}

// MARK: - Format walkers: the fields of each file

/// GGUF: header counts, every metadata key length, type, scalar value, string
/// length and array header (and first element), every tensor's dims, type and offset.
private func ggufFields(_ d: [UInt8]) -> [Field] {
    var o = 0, fields: [Field] = []
    func u32() -> UInt64 { defer { o += 4 }; return (0..<4).reduce(0) { $0 | UInt64(d[o + $1]) << (8 * UInt64($1)) } }
    func u64() -> UInt64 { defer { o += 8 }; return (0..<8).reduce(0) { $0 | UInt64(d[o + $1]) << (8 * UInt64($1)) } }
    func field(_ width: Int, _ what: String) { fields.append(Field(offset: o, width: width, what: what)) }
    func string(_ what: String) { field(8, "length of \(what)"); o += Int(u64()) }
    let sizes: [UInt64: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
    func value(_ type: UInt64, _ what: String, first: Bool = true) {
        if let size = sizes[type] { if first { field(size, what) }; o += size; return }
        if type == 8 { if first { field(8, "length of \(what)") }; o += Int(u64()); return }
        field(4, "element type of \(what)")
        let element = u32()
        field(8, "length of \(what)")
        let n = u64()
        for i in 0..<n { value(element, what, first: i == 0) }
    }
    o = 8
    field(8, "tensor count")
    let tensors = u64()
    field(8, "metadata count")
    let kvs = u64()
    for _ in 0..<kvs {
        string("key")
        field(4, "value type")
        value(u32(), "value")
    }
    for _ in 0..<tensors {
        string("tensor name")
        field(4, "dimension count")
        let dims = u32()
        for _ in 0..<dims { field(8, "dimension"); o += 8 }
        field(4, "tensor type"); o += 4
        field(8, "tensor offset"); o += 8
    }
    return fields
}

/// ZIP: every field of the end record, the central directory entries and the local headers.
private func zipFields(_ d: [UInt8]) -> [Field] {
    func u16(_ o: Int) -> Int { Int(d[o]) | Int(d[o + 1]) << 8 }
    func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
    var fields: [Field] = []
    guard let eocd = stride(from: d.count - 22, through: 0, by: -1).first(where: { u32($0) == 0x0605_4B50 }) else { return [] }
    for (offset, width) in [(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)] { fields.append(Field(offset: eocd + offset, width: width, what: "end record")) }
    var o = u32(eocd + 16)
    for _ in 0..<u16(eocd + 10) where o + 46 <= d.count && u32(o) == 0x0201_4B50 {
        for (offset, width) in [(10, 2), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4)] {
            fields.append(Field(offset: o + offset, width: width, what: "central entry"))
        }
        let local = u32(o + 42)
        if local + 30 <= d.count {
            for (offset, width) in [(8, 2), (18, 4), (22, 4), (26, 2), (28, 2)] { fields.append(Field(offset: local + offset, width: width, what: "local header")) }
        }
        o += 46 + u16(o + 28) + u16(o + 30) + u16(o + 32)
    }
    return fields
}

/// The pickle inside a torch ZIP: every byte of data.pkl (opcodes and their arguments).
private func pickleFields(_ d: [UInt8], path: String) throws -> [Field] {
    let archive = try ZipArchive(path: path)
    let entry = try archive.entry(endingWith: "data.pkl")
    return (0..<entry.size).map { Field(offset: entry.dataOffset + $0, width: 1, what: "pickle byte \($0)") }
}

/// Protobuf: every tag and length varint of the top-level fields, and of the
/// fields inside the first pieces, the trainer spec and the normalizer spec.
private func protobufFields(_ d: [UInt8]) -> [Field] {
    var fields: [Field] = []
    func varint(_ o: inout Int) -> Int {
        var v = 0, shift = 0
        while o < d.count { let b = d[o]; o += 1; v |= Int(b & 0x7F) << shift; shift += 7; if b < 0x80 || shift > 56 { break } }
        return v
    }
    func walk(_ start: Int, _ end: Int, depth: Int, pieces: inout Int) {
        var o = start
        while o < end {
            let tagAt = o
            let key = varint(&o)
            fields.append(Field(offset: tagAt, width: max(1, o - tagAt), what: "tag"))
            switch key & 7 {
            case 0: let at = o; _ = varint(&o); fields.append(Field(offset: at, width: max(1, o - at), what: "varint"))
            case 1: fields.append(Field(offset: o, width: 8, what: "fixed64")); o += 8
            case 5: fields.append(Field(offset: o, width: 4, what: "fixed32")); o += 4
            case 2:
                let at = o
                let n = varint(&o)
                fields.append(Field(offset: at, width: max(1, o - at), what: "length"))
                let number = key >> 3
                if depth == 0, number == 1 { pieces += 1 }
                if depth == 0, number != 1 || pieces <= 2 { walk(o, min(end, o + n), depth: 1, pieces: &pieces) }
                o += n
            default: return
            }
        }
    }
    var pieces = 0
    walk(0, d.count, depth: 0, pieces: &pieces)
    return fields
}

/// safetensors: the header length and each byte of the header's numbers and dtype names.
private func safetensorsFields(_ d: [UInt8]) -> [Field] {
    let headerLength = (0..<8).reduce(0) { $0 | Int(d[$1]) << (8 * $1) }
    var fields = [Field(offset: 0, width: 8, what: "header length")]
    for o in 8..<min(d.count, 8 + headerLength) where (0x30...0x39).contains(d[o]) || (0x41...0x5A).contains(d[o]) {
        fields.append(Field(offset: o, width: 1, what: "header byte"))
    }
    return fields
}

@Suite("Corrupted inputs", .serialized)
struct CorruptionTests {
    @Test("every committed fuzz corpus and regression input runs to an answer")
    func corpora_replayCleanly() throws {
        for target in FuzzTargets.all {
            for folder in ["corpus", "regressions"] {
                let dir = corpus.appendingPathComponent("\(folder)/\(target.name)").path
                let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
                if folder == "corpus" { #expect(!names.isEmpty, "\(target.name) has no seed corpus") }
                for name in names.sorted() { _ = target.run(try bytes(dir + "/" + name)) }
            }
        }
    }

    @Test("GGUF: every metadata value and tensor field, corrupted")
    func gguf_everyField() throws {
        let data = try bytes(corpus.appendingPathComponent("corpus/gguf/glm130b-tiny-q4_0-tokenizer.gguf").path)
        let fields = ggufFields(data)
        #expect(fields.count > 100)
        let (runs, accepted) = try corrupt("gguf", data, fields)
        #expect(accepted < runs, "some corruptions must be refused")
    }

    @Test("torch .bin: ZIP headers and every pickle byte, corrupted")
    func torchBin_zipAndPickle() throws {
        let path = corpus.appendingPathComponent("corpus/torch-bin/chatglm-shard2.bin").path
        let data = try bytes(path)
        let zip = zipFields(data), pickle = try pickleFields(data, path: path)
        #expect(zip.count > 20 && pickle.count > 100)
        // the archive's fields through opening it and reading one tensor (every tensor
        // of every mutation is the fuzzer's job: a debug build reads them slowly)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(getpid()).bin").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for field in zip {
            for mutated in mutations(of: data, field) {
                FileManager.default.createFile(atPath: scratch, contents: Data(mutated))
                if let checkpoint = try? TorchCheckpoint(path: scratch), let first = checkpoint.names.first {
                    _ = try? checkpoint.floats(first)
                }
            }
        }
        // every pickle byte zeroed and flipped, unpickled in memory (the whole path with
        // every pattern is the fuzzer's job: a file per run is too slow for the suite)
        let archive = try ZipArchive(path: path)
        let pkl = try archive.bytes(try archive.entry(endingWith: "data.pkl"))
        let start = pickle[0].offset
        for field in pickle {
            for value: UInt8 in [0x00, data[field.offset] ^ 0xFF] {
                var copy = pkl
                copy[field.offset - start] = value
                var unpickler = Unpickler(bytes: copy, file: "data.pkl")
                _ = try? unpickler.load()
            }
        }
    }

    @Test("SentencePiece model: every tag and length, corrupted")
    func sentencePiece_everyField() throws {
        let data = try bytes(corpus.appendingPathComponent("corpus/sentencepiece/user_rules.model").path)
        let fields = protobufFields(data)
        #expect(fields.count > 30)
        // every field through the parser; every eighth through encoding and decoding too
        for field in fields {
            for mutated in mutations(of: data, field, few: true) { _ = try? TokenizerVocabulary(sentencePieceModel: mutated, file: "corrupt.model") }
        }
        _ = try corrupt("sentencepiece", data, fields.enumerated().filter { $0.offset % 16 == 0 }.map(\.element))
    }

    @Test("config.json: every value replaced by a hostile one", arguments: ["glm-130b-tiny", "chatglm-6b-tiny"])
    func configJSON_everyValue(arch: String) throws {
        let url = corpus.appendingPathComponent("corpus/config-json/\(arch).json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let run = try #require(FuzzTargets.named("config-json")).run
        #expect(run([UInt8](try Data(contentsOf: url))))
        let hostile: [Any] = [-1, 0, 1e300, 1 << 40, 1 << 62, 1.5, "x", NSNull(), [Any](), [String: Any](), true, Double.leastNonzeroMagnitude]
        var refused = 0
        func keys(_ object: [String: Any], _ rebuild: @escaping ([String: Any]) -> [String: Any]) throws {
            for key in object.keys.sorted() {
                if let inner = object[key] as? [String: Any] {
                    try keys(inner) { changed in var copy = object; copy[key] = changed; return rebuild(copy) }
                }
                for value in hostile {
                    var copy = object
                    copy[key] = value
                    if !run([UInt8](try JSONSerialization.data(withJSONObject: rebuild(copy)))) { refused += 1 }
                }
            }
        }
        try keys(json) { $0 }
        #expect(refused > 20)
    }

    @Test("safetensors: the header length and header fields, corrupted")
    func safetensors_headerFields() throws {
        let data = try bytes(corpus.appendingPathComponent("corpus/safetensors/small.safetensors").path)
        let (runs, accepted) = try corrupt("safetensors", data, safetensorsFields(data))
        #expect(accepted < runs)
    }
}
