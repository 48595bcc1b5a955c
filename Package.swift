// swift-tools-version: 6.1
// GLMRuntime: a CPU inference runtime for the GLM model family.
// Layout (fixed): CKernels (C SIMD kernels) -> KernelBridge (safe Swift views)
// -> GLMRuntime (models) and Plugins (kernel registry, plugin loading over
// GLMPluginABI) -> GLMServer (HTTP, over Hummingbird) and GLMDistributed (pipeline
// stages as MPI ranks, over the MPIShim C target and Open MPI) -> glm-run (CLI).
// GLMRuntime runs on any KernelSet: the built-in Kernels, or the registry's
// dispatcher that glm-run hands it.
import PackageDescription

let package = Package(
    name: "GLMRuntime",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "glm-run", targets: ["glm-run"]),
        .library(name: "GLMRuntime", targets: ["GLMRuntime"]),
        // An example kernel plugin, loaded at run time with --plugin (docs/writing-a-kernel-plugin.md).
        .library(name: "GLMExamplePlugin", type: .dynamic, targets: ["ExamplePlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // OpenMP and hwloc flags stay inside this target. Debian's libomp-dev
        // provides libomp5.so on the default library path; hwloc links as -lhwloc.
        // The kernels are always optimised: a SIMD library at -O0 tests nothing useful.
        .target(
            name: "CKernels",
            cSettings: [
                .unsafeFlags(["-fopenmp", "-O2", "-Wall", "-Wno-unknown-pragmas"]),
            ],
            linkerSettings: [
                .linkedLibrary("omp5"),
                .linkedLibrary("hwloc"),
                .linkedLibrary("m"),
            ]
        ),
        .target(name: "KernelBridge", dependencies: ["CKernels"]),
        // The plugin C ABI: one header (glm_plugin.h) that plugins and the loader share.
        .target(name: "GLMPluginABI"),
        .target(
            name: "ExamplePlugin",
            dependencies: ["GLMPluginABI"],
            cSettings: [.unsafeFlags(["-fopenmp", "-O2"])],
            linkerSettings: [.linkedLibrary("omp5")]
        ),
        .target(name: "Plugins", dependencies: ["KernelBridge", "GLMPluginABI"]),
        .target(name: "GLMRuntime", dependencies: ["KernelBridge"]),
        // The OpenAI-compatible HTTP server (glm-run serve) over Hummingbird.
        .target(name: "GLMServer", dependencies: ["GLMRuntime", "KernelBridge", .product(name: "Hummingbird", package: "hummingbird")]),
        // Open MPI's C API through its pkg-config file (ompi-c, from Debian's libopenmpi-dev;
        // scripts/install-deps installs it). Only the shim below includes it.
        .systemLibrary(name: "COpenMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // The thin C shim over MPI (glm_mpi.h): init, rank and size, sends and receives, abort.
        .target(name: "MPIShim", dependencies: ["COpenMPI"], cSettings: [.unsafeFlags(["-O2", "-Wall"])]),
        // Pipeline stages as MPI ranks: the Swift wrapper over the shim and the ranks' protocol.
        .target(name: "GLMDistributed", dependencies: ["GLMRuntime", "KernelBridge", "MPIShim"]),
        // The bench's code lives under bench/ with its scripts and results.
        .target(name: "GLMBench", dependencies: ["KernelBridge", "GLMRuntime"], path: "bench/GLMBench"),
        .executableTarget(
            name: "glm-run",
            dependencies: [
                "GLMRuntime", "KernelBridge", "Plugins", "GLMBench", "GLMServer", "GLMDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Both test targets read the golden data in Tests/Fixtures (copied from
        // the model authors' reference runs), so a clean clone tests itself.
        .testTarget(name: "KernelTests", dependencies: ["KernelBridge", "GLMRuntime"]),
        .testTarget(name: "RuntimeTests", dependencies: ["KernelBridge", "GLMRuntime", "GLMBench", "FuzzTargets", "GLMDistributed"]),
        // Fuzz targets over every parser of untrusted input (scripts/fuzz runs
        // them under libFuzzer; RuntimeTests replays their committed corpora).
        .target(name: "FuzzTargets", dependencies: ["GLMRuntime"], path: "Tests/FuzzTargets"),
        .executableTarget(name: "glm-fuzz", dependencies: ["FuzzTargets"], path: "Tests/Fuzz", exclude: ["corpus", "regressions", "README.md"]),
        // Counts a decode step's heap allocations in a process of its own (the counter
        // replaces the malloc family for the whole process).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .executableTarget(name: "glm-alloc-check", dependencies: ["AllocationCounter", "GLMRuntime", "KernelBridge", "Plugins"], path: "Tests/AllocCheck"),
        .testTarget(name: "PluginTests", dependencies: ["KernelBridge", "Plugins", "GLMRuntime"]),
        .testTarget(name: "ServerTests", dependencies: [
            "GLMServer", "GLMRuntime", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
