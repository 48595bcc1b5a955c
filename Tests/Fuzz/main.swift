// glm-fuzz — runs one FuzzTargets entry under libFuzzer (built by scripts/fuzz
// with -sanitize=fuzzer,address and GLM_FUZZ), or replays files through it
// without libFuzzer (any build: how a finding is reproduced by hand).
//
//   glm-fuzz list
//   glm-fuzz replay NAME FILE_OR_DIR ...
//   GLM_FUZZ_TARGET=NAME glm-fuzz [libFuzzer options] [CORPUS_DIR ...]   (fuzz builds)

import Foundation
import FuzzTargets

#if GLM_FUZZ
// libFuzzer calls this for each input; scripts/fuzz names the target in
// GLM_FUZZ_TARGET. libFuzzer's archive needs the symbol; our main starts
// libFuzzer's driver itself.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let target = FuzzTargets.selected else { fatalError("GLM_FUZZ_TARGET names no target (scripts/fuzz lists them)") }
    _ = target.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("glm-fuzz: \(message)\n".utf8))
    exit(2)
}

let arguments = CommandLine.arguments
#if GLM_FUZZ
if FuzzTargets.selected != nil {
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var argc = Int32(arguments.count)
    let status = argv.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var base = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &base, fuzzOneInput)
    }
    exit(status)
}
#endif
guard arguments.count >= 2 else { fail("usage: glm-fuzz list | replay NAME FILE_OR_DIR ...") }
switch arguments[1] {
case "list":
    for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
case "replay":
    guard arguments.count >= 4, let target = FuzzTargets.named(arguments[2]) else { fail("replay NAME FILE_OR_DIR ...") }
    var files: [String] = []
    for path in arguments[3...] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): no such file") }
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files += names.sorted().map { path + "/" + $0 }
        } else {
            files.append(path)
        }
    }
    var accepted = 0
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { fail("\(file): cannot read") }
        if target.run([UInt8](data)) { accepted += 1 }
    }
    print("\(target.name): replayed \(files.count) inputs, \(accepted) accepted, \(files.count - accepted) refused with an error")
default:
    fail("unknown command '\(arguments[1])' (list, replay)")
}
