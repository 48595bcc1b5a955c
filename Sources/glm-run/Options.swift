// Options.swift — argument groups shared by several subcommands, and the one
// place errors become a single clear line with a non-zero exit.

import ArgumentParser
import Foundation
import GLMRuntime
import KernelBridge

struct RuntimeOptions: ParsableArguments {
    @Option(name: [.customShort("t"), .long], help: "Threads (default: one per physical core, or OMP_NUM_THREADS).")
    var threads: Int?

    @Flag(help: "Bind thread i to physical core i.")
    var bind = false

    /// Applies the thread settings.
    func apply() throws {
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
        try Threads.configure(count: threads, bind: bind)
    }
}

/// Loads a model file, turning every failure into one line naming the file.
func loadModel(_ path: String) throws -> GLMModel {
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
    return try GLMModel(path: path)
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Prints to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// The process's peak resident memory (VmHWM from /proc/self/status) for reports.
func peakResidentMemory() -> String {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return "unknown" }
    return String(format: "%.1f MB", kb / 1024)
}
