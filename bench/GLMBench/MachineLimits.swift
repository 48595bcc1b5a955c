// MachineLimits.swift — the limits every figure is set against, measured in
// the same run: read bandwidth (a STREAM-like sum over a buffer 8x the LLC,
// at least 256 MB), FP32 FMA peak, int8 dot peak and int16 dot peak (vpmaddwd,
// what the 16-bit-activation kernels run on).

import KernelBridge

func measureLimits(threads: Int, isa: InstructionSet, quick: Bool, topology: Topology) throws -> LimitFigures {
    try Threads.configure(count: threads)
    let bufferBytes = quick ? 64 << 20 : max(256 << 20, 8 * max(topology.l3Bytes * max(topology.l3Instances, 1), 1))
    let buffer = ProbeBuffer(count: bufferBytes / 4)
    let read = measure(warmup: 1, repetitions: quick ? 3 : 7) { _ = Probes.read(buffer, isa: isa) }
    let iterations = quick ? 2_000_000 : 20_000_000
    var flops = 0
    let fma = measure(warmup: 1, repetitions: quick ? 3 : 5) { flops = Probes.fma(iterations: iterations, isa: isa) }
    var ops = 0
    let int8 = measure(warmup: 1, repetitions: quick ? 3 : 5) { ops = Probes.int8(iterations: iterations, isa: isa) }
    var ops16 = 0
    let int16 = measure(warmup: 1, repetitions: quick ? 3 : 5) { ops16 = Probes.int16(iterations: iterations, isa: isa) }
    // best-of rather than median for limits: a limit is what the machine can do
    var limits = LimitFigures(threads: threads, read_gbps: Double(buffer.bytes) / read.min / 1e9,
                              fma_gflops: Double(flops) / fma.min / 1e9, int8_gops: Double(ops) / int8.min / 1e9)
    limits.int16_gops = Double(ops16) / int16.min / 1e9
    return limits
}
