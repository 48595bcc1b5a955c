// OpenAIRequests.swift — the request bodies of the OpenAI-compatible routes,
// read from untrusted JSON with an error naming the field for anything of the
// wrong type or out of range (unknown fields are ignored, as OpenAI does).

import Foundation
import GLMRuntime

/// An error answered as OpenAI's error JSON with this HTTP status.
public struct APIError: Error, Sendable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?

    public init(_ status: Int, _ message: String, type: String = "invalid_request_error", param: String? = nil) {
        (self.status, self.message, self.type, self.param) = (status, message, type, param)
    }

    /// {"error": {"message", "type", "param", "code"}}
    public var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": NSNull()] as [String: Any]]
    }
}

/// The sampling fields every generating route takes.
struct SamplingFields {
    var parameters = GenerateParameters()
    var stop: [String] = []
    var stream = false

    init(_ json: [String: Any], defaultMaxTokens: Int, maxTokensLimit: Int) throws {
        let r = JSONFields(json)
        parameters.maxTokens = try r.int("max_tokens", in: 1...maxTokensLimit) ?? defaultMaxTokens
        parameters.temperature = try r.float("temperature", in: 0...2) ?? 1
        parameters.topP = try r.float("top_p", in: 0.000001...1) ?? 1
        parameters.topK = try r.int("top_k", in: 0...1_000_000) ?? 0
        parameters.repetitionPenalty = try r.float("repetition_penalty", in: 0.01...100) ?? 1
        parameters.seed = UInt64(try r.int("seed", in: 0...Int.max) ?? 0)
        if let n = try r.int("n", in: 1...Int.max), n > 1 {
            throw APIError(400, "n = \(n) is not supported: this server returns one choice per request", param: "n")
        }
        switch json["stop"] {
        case nil, is NSNull: break
        case let s as String: stop = [s]
        case let list as [Any]:
            stop = try list.map { item in
                guard let s = item as? String else { throw APIError(400, "'stop' must be a string or a list of strings", param: "stop") }
                return s
            }
            guard stop.count <= 4 else { throw APIError(400, "'stop' takes at most 4 strings", param: "stop") }
        default: throw APIError(400, "'stop' must be a string or a list of strings", param: "stop")
        }
        stop = stop.filter { !$0.isEmpty }
        stream = try r.bool("stream") ?? false
    }
}

/// Typed reads of a JSON object's fields, each failure an APIError naming the field.
struct JSONFields {
    let json: [String: Any]
    init(_ json: [String: Any]) { self.json = json }

    private func present(_ key: String) -> Any? {
        guard let v = json[key], !(v is NSNull) else { return nil }
        return v
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard !isJSONBool(v), let n = (v as? Int) ?? (v as? Double).flatMap({ Int(exactly: $0) }), range.contains(n) else {
            throw APIError(400, "'\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v)", param: key)
        }
        return n
    }

    func float(_ key: String, in range: ClosedRange<Float>) throws -> Float? {
        guard let v = present(key) else { return nil }
        guard !isJSONBool(v), let d = (v as? Double) ?? (v as? Int).map(Double.init), d.isFinite, range.contains(Float(d)) else {
            throw APIError(400, "'\(key)' must be a number in \(range.lowerBound)...\(range.upperBound), got \(v)", param: key)
        }
        return Float(d)
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = present(key) else { return nil }
        guard isJSONBool(v), let b = v as? Bool else { throw APIError(400, "'\(key)' must be true or false", param: key) }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v as? String else { throw APIError(400, "'\(key)' must be a string", param: key) }
        return s
    }
}

/// A JSON object body, or a 400 saying why not.
func jsonObject(_ data: Data) throws -> [String: Any] {
    guard let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
        throw APIError(400, "the request body is not valid JSON")
    }
    guard let object = value as? [String: Any] else { throw APIError(400, "the request body must be a JSON object") }
    return object
}

/// The messages of a chat request as history turns, the last user query and the system
/// text (the templates with a system role take it apart; for the others it is merged in front).
func chatMessages(_ json: [String: Any], separateSystem: Bool = false) throws -> (history: [ChatTurn], query: String, system: String?) {
    guard let raw = json["messages"] else { throw APIError(400, "'messages' is required", param: "messages") }
    guard let list = raw as? [Any], !list.isEmpty else { throw APIError(400, "'messages' must be a non-empty list", param: "messages") }
    var messages: [(role: String, content: String)] = []
    for (i, item) in list.enumerated() {
        guard let m = item as? [String: Any], let role = m["role"] as? String else {
            throw APIError(400, "messages[\(i)] must be an object with a 'role'", param: "messages")
        }
        guard let content = m["content"] as? String else {
            throw APIError(400, "messages[\(i)].content must be a string", param: "messages")
        }
        guard ["system", "user", "assistant"].contains(role) else {
            throw APIError(400, "messages[\(i)].role '\(role)' is not system, user or assistant", param: "messages")
        }
        messages.append((role, content))
    }
    guard let last = messages.last, last.role == "user", !last.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
        throw APIError(400, "the last message must be a non-empty user message", param: "messages")
    }
    // system text goes in front of the first query (GLM has no system role); user/assistant pairs are turns
    var history: [ChatTurn] = [], pending: String?, system = ""
    for m in messages.dropLast() {
        switch m.role {
        case "system": system += m.content + "\n"
        case "user": pending = (pending.map { $0 + "\n" } ?? "") + m.content
        default:
            history.append(ChatTurn(query: pending ?? "", answer: m.content))
            pending = nil
        }
    }
    var query = (pending.map { $0 + "\n" } ?? "") + last.content
    if separateSystem { return (history, query, system.isEmpty ? nil : String(system.dropLast())) }
    if history.isEmpty { query = system + query } else if !system.isEmpty {
        history[0] = ChatTurn(query: system + history[0].query, answer: history[0].answer)
    }
    return (history, query, nil)
}
