// MPIPipeline.swift — a model's layers spread over the ranks of an MPI job,
// one pipeline stage per rank, each rank holding only its own layers' weights
// (the model file is memory-mapped; a rank touches only its tensors) and KV
// caches. Rank 0 embeds, drives and receives the logits; every other rank
// serves: it takes a chunk's hidden states from the rank before it, runs its
// layers and hands them on, and the last rank sends the logits back to rank 0.
//
// Start-up, on every rank (MPIPipeline.start):
//   1. each rank opens the model file and sends rank 0 its header checksum, or
//      that it could not (it prints its own error);
//   2. rank 0 checks that all ranks opened the same file, places the layers
//      (RankPlacement: costs, memory per rank) and
//      sends everyone the verdict: the layer ranges, or stop;
//   3. each rank loads its stage.
// Messages between neighbours (tags in MPI.swift), all from a rank to the next:
//   header (int64s): op, sequence, start, bidirectional length, rows, all logits,
//                    phase, positions[rows], blocks[rows]  (op 0: stop)
//   hidden (floats): rows x hidden, the layers' output so far
// and from the last rank to rank 0: result (int64s: sequence, rows), logits (floats).
// MPI keeps the order of messages between two ranks, so chunks flow in the
// order rank 0 submitted them; rank 0 checks each result against that order.
//
// A rank that fails while serving prints its error and aborts the job (mpirun
// then stops every rank); a rank that dies is reported by mpirun the same way.

import Foundation
import GLMRuntime
import KernelBridge

public struct MPIPipelineOptions {
    /// Sequences each stage holds caches for (decode of several sequences is pipelined).
    public var sequences = 1
    /// Tokens per sequence's cache (nil: the model's context).
    public var capacity: Int?
    /// Resident bytes each rank may use (weights and KV caches); nil: no budget.
    public var memoryPerRank: Double?
    public var fusion = true
    public var kvType = KVCacheType.default
    public var rates = MachineRates.reference

    public init() {}
}

public struct MPIPipelineError: Error, CustomStringConvertible {
    public let description: String
    /// Already printed on this rank's stderr (start-up problems are printed before the
    /// ranks exit: mpirun may stop a rank as soon as another one has exited).
    public let reported: Bool
    public init(_ description: String, reported: Bool = false) {
        self.description = description
        self.reported = reported
    }
}

/// What one rank measured: seconds per chunk it ran (its layers, and the embedding
/// or the logits), per phase (MPIPipeline.phase: prefill, batched decode, ...).
public struct StageTimings: Sendable {
    public static let phases = 8
    public var seconds = [[Double]](repeating: [], count: StageTimings.phases)
    public func median(phase: Int) -> Double {
        let v = seconds[phase].sorted()
        return v.isEmpty ? 0 : v[v.count / 2]
    }
}

public final class MPIPipeline {
    public let mpi: MPI
    public let model: GLMModel
    /// Per rank, the layers it runs.
    public let layers: [Range<Int>]
    /// Rank 0: the plan behind `layers` (costs and bytes per rank); nil on the other ranks.
    public let placement: RankPlacement?
    public let stage: PipelineStage
    public var rank: Int { mpi.rank }
    public var ranks: Int { mpi.size }
    public var isDriver: Bool { mpi.rank == 0 }
    public private(set) var timings = StageTimings()
    /// Rank 0: the phase the next chunks' timings count under (0 ..< StageTimings.phases).
    public var phase = 0
    private let next: OutgoingChannel?
    private let toDriver: OutgoingChannel?
    /// Rank 0: chunks submitted and not yet answered, oldest first, with the receives
    /// of their answers posted (nil when rank 0 is also the last stage).
    private var inFlight: [(sequence: Int, rows: Int, answer: (header: PostedReceive<Int64>, logits: PostedReceive<Float>)?)] = []
    /// Rank 0 when it is also the last stage (one rank): results made here.
    private var localResults: [(Int, [Float])] = []
    private var stopped = false

    /// Starts MPI and sets the pipeline up on every rank (the start-up above). Every rank
    /// calls it with the same file path; the options of rank 0 decide the placement.
    public static func start(modelPath: String, kernels: () throws -> any KernelSet, options: MPIPipelineOptions) throws -> MPIPipeline {
        let mpi = try MPI()
        do {
            return try MPIPipeline(mpi: mpi, modelPath: modelPath, kernels: kernels, options: options)
        } catch let error as MPIPipelineError {
            // every rank reached the same verdict and throws: a clean stop
            mpi.finalize()
            throw error
        } catch {
            // a transfer failed on the way: the other ranks may be waiting for this one
            fail(mpi: mpi, error)
        }
    }

    private init(mpi: MPI, modelPath: String, kernels: () throws -> any KernelSet, options: MPIPipelineOptions) throws {
        self.mpi = mpi
        let opened = Result { () throws -> GLMModel in
            guard FileManager.default.fileExists(atPath: modelPath) else { throw MPIPipelineError("\(modelPath): no such file") }
            return try GLMModel(path: modelPath)
        }
        (layers, placement) = try MPIPipeline.agree(mpi: mpi, opened: opened, path: modelPath, options: options)
        model = try opened.get()
        do {
            stage = try PipelineStage(model: model, layers: layers[mpi.rank], first: mpi.rank == 0, last: mpi.rank == mpi.size - 1, sequences: options.sequences,
                                      capacity: options.capacity ?? model.config.contextLength, kernels: try kernels(),
                                      fusion: options.fusion, kvType: options.kvType)
        } catch {
            // the other ranks have agreed to go on: only ending the job stops them
            MPIPipeline.fail(mpi: mpi, error)
        }
        next = mpi.rank + 1 < mpi.size ? OutgoingChannel(to: mpi.rank + 1) : nil
        toDriver = mpi.rank != 0 ? OutgoingChannel(to: 0) : nil
    }

    /// Steps 1 and 2 of start-up: every rank returns the layers of every rank (rank 0 also
    /// its plan), or every rank throws.
    private static func agree(mpi: MPI, opened: Result<GLMModel, Error>, path: String,
                              options: MPIPipelineOptions) throws -> ([Range<Int>], RankPlacement?) {
        let checksum = (try? opened.get())?.file.map { Int64(bitPattern: $0.headerChecksum) }
        let mine: [Int64] = checksum.map { [1, $0] } ?? [0, 0]
        if case let .failure(error) = opened { FileHandle.standardError.write(Data("rank \(mpi.rank): error: \(error)\n".utf8)) }
        guard mpi.rank == 0 else {
            try mpi.send(mine, to: 0, tag: .setup)
            let verdict = try mpi.receiveInts(from: 0, tag: .setup, capacity: 1 + 2 * mpi.size)
            guard verdict.first == 1, verdict.count == 1 + 2 * mpi.size else {
                throw MPIPipelineError("rank \(mpi.rank): stopped, rank 0 found a problem", reported: true)
            }
            let layerCount = try opened.get().config.layers
            // checked before a Range is made of them (lower > upper would trap)
            let bounds = (0..<mpi.size).map { (Int(verdict[1 + 2 * $0]), Int(verdict[2 + 2 * $0])) }
            guard bounds.allSatisfy({ 0 <= $0.0 && $0.0 <= $0.1 && $0.1 <= layerCount }) else {
                fail(mpi: mpi, MPIPipelineError("rank 0 sent a placement outside the model's \(layerCount) layers"))
            }
            let ranges = bounds.map { $0.0..<$0.1 }
            guard ranges.first?.lowerBound == 0, ranges.last?.upperBound == layerCount,
                  ranges.dropFirst().dropLast().allSatisfy({ !$0.isEmpty }),
                  zip(ranges, ranges.dropFirst()).allSatisfy({ $0.upperBound == $1.lowerBound }) else {
                fail(mpi: mpi, MPIPipelineError("rank 0 sent a placement that does not cover the model's \(layerCount) layers"))
            }
            return (ranges, nil)
        }
        var problems: [String] = []
        if case let .failure(error) = opened { problems.append("rank 0 cannot open the model file: \(error)") }
        for r in 1..<max(mpi.size, 1) {
            let theirs = try mpi.receiveInts(from: r, tag: .setup, capacity: 2)
            if theirs.count != 2 || theirs[0] != 1 {
                problems.append("rank \(r) cannot open its model file (its error is printed above)")
            } else if let checksum, theirs[1] != checksum {
                problems.append(String(format: "rank %d opened a different model file than rank 0 (header checksum %016llx, rank 0's %016llx): every rank must open the same file",
                                       r, UInt64(bitPattern: theirs[1]), UInt64(bitPattern: checksum)))
            }
        }
        var placed: RankPlacement?
        if problems.isEmpty, case let .success(model) = opened {
            do { placed = try placement(model: model, ranks: mpi.size, options: options) } catch { problems.append("\(error)") }
        }
        let verdict: [Int64] = placed.map { p in [1] + p.layers.flatMap { [Int64($0.lowerBound), Int64($0.upperBound)] } } ?? [0]
        if !problems.isEmpty { FileHandle.standardError.write(Data(problems.map { "error: \($0)\n" }.joined().utf8)) }
        for r in 1..<max(mpi.size, 1) { try mpi.send(verdict, to: r, tag: .setup) }
        guard let placed else { throw MPIPipelineError(problems.joined(separator: "; "), reported: true) }
        return (placed.layers, placed)
    }

    /// Rank 0's placement: decode costs (bandwidth-bound: they balance the weights, and so
    /// the memory), and each layer's KV caches for every sequence counted with its weights.
    public static func placement(model: GLMModel, ranks: Int, options: MPIPipelineOptions) throws -> RankPlacement {
        let c = model.config
        let capacity = min(options.capacity ?? c.contextLength, c.contextLength)
        let items = CostModel.items(c, tokens: 1, bitsPerWeight: CostModel.bitsPerWeight(of: model), rates: options.rates)
        let kv = Double(options.kvType.bytes(config: c, capacity: capacity, layers: 1)) * Double(options.sequences)
        return try RankPlacement.place(items: items, layerCount: c.layers, ranks: ranks, kvBytesPerLayer: kv,
                                       memoryPerRank: options.memoryPerRank)
    }

    /// Prints a rank's error and ends the job: mpirun stops every rank and says which failed.
    public static func fail(mpi: MPI, _ error: Error) -> Never {
        FileHandle.standardError.write(Data("rank \(mpi.rank): error: \(error)\n".utf8))
        mpi.abort(code: 1)
    }

    // MARK: - Ranks 1 ..< P: serve until rank 0 stops the pipeline

    /// Runs this rank's stage for every chunk that arrives until the stop message, then
    /// sends rank 0 its timings. Rank 0 does not call this. A failure ends the job.
    public func serve() {
        do { try serveChunks() } catch { MPIPipeline.fail(mpi: mpi, error) }
    }

    private func serveChunks() throws {
        precondition(!isDriver, "rank 0 drives the pipeline")
        let h = model.config.hidden
        let maxRows = stage.capacity
        while true {
            let header = try mpi.receiveInts(from: rank - 1, tag: .header, capacity: 7 + 2 * maxRows)
            guard let op = header.first else { throw MPIPipelineError("rank \(rank): empty header from rank \(rank - 1)") }
            if op == 0 {
                try next?.send([0], headerTag: .header, payloadTag: .hidden)
                try next?.finish()
                try sendTimings()
                return
            }
            let (chunk, all, phase) = try MPIPipeline.decodeHeader(header, maxRows: maxRows)
            let x = try mpi.receiveFloats(from: rank - 1, tag: .hidden, capacity: chunk.rows * h)
            guard x.count == chunk.rows * h else {
                throw MPIPipelineError("rank \(rank): rank \(rank - 1) sent \(x.count) hidden values for \(chunk.rows) rows of \(h)")
            }
            let begin = DispatchTime.now().uptimeNanoseconds
            let out = try stage.run(x, chunk)
            if stage.makesLogits {
                let logits = try stage.logits(out, chunk, all: all)
                record(phase, since: begin)
                try toDriver!.send([Int64(chunk.sequence), Int64(all ? chunk.rows : 1)], logits, headerTag: .result, payloadTag: .logits)
            } else {
                record(phase, since: begin)
                try next!.send(header, out, headerTag: .header, payloadTag: .hidden)
            }
        }
    }

    private func record(_ phase: Int, since begin: UInt64) {
        timings.seconds[phase].append(Double(DispatchTime.now().uptimeNanoseconds - begin) * 1e-9)
    }

    private func sendTimings() throws {
        try toDriver!.send(timings.seconds.map { Int64($0.count) }, timings.seconds.flatMap { $0.map { Float($0) } },
                           headerTag: .report, payloadTag: .report)
        try toDriver!.finish()
    }

    static func decodeHeader(_ h: [Int64], maxRows: Int) throws -> (StageChunk, all: Bool, phase: Int) {
        guard h.count >= 7 else { throw MPIPipelineError("a chunk header of \(h.count) values is too short") }
        let rows = Int(clamping: h[4])
        guard rows >= 1, rows <= maxRows, h.count == 7 + 2 * rows, (0..<Int64(StageTimings.phases)).contains(h[6]) else {
            throw MPIPipelineError("a chunk header names \(h[4]) rows (at most \(maxRows)) and phase \(h[6]) in \(h.count) values")
        }
        func int32s(_ r: Range<Int>) throws -> [Int32] {
            try h[r].map { v in
                guard let x = Int32(exactly: v) else { throw MPIPipelineError("position \(v) in a chunk header is out of range") }
                return x
            }
        }
        let chunk = StageChunk(sequence: Int(clamping: h[1]), start: Int(clamping: h[2]), positions: try int32s(7..<(7 + rows)),
                               blocks: try int32s((7 + rows)..<(7 + 2 * rows)), bidirectionalLength: Int(clamping: h[3]))
        return (chunk, h[5] != 0, Int(h[6]))
    }

    static func encodeHeader(_ c: StageChunk, all: Bool, phase: Int) -> [Int64] {
        [1, Int64(c.sequence), Int64(c.start), Int64(c.bidirectionalLength), Int64(c.rows), all ? 1 : 0, Int64(phase)]
            + c.positions.map { Int64($0) } + c.blocks.map { Int64($0) }
    }

    // MARK: - Rank 0: submit chunks, take results, stop

    /// Embeds `ids` of `sequence` at cache indices [start, start + ids.count), runs rank 0's
    /// layers and hands the chunk on. Its logits come back from nextResult(), in submission order.
    public func submit(sequence: Int, ids: [Int32], start: Int, layout: PromptLayout, allLogits: Bool) throws {
        precondition(isDriver, "only rank 0 submits")
        guard !stopped else { throw MPIPipelineError("the pipeline is stopped") }
        let c = model.config
        let chunk = StageChunk(model: model, sequence: sequence, start: start, count: ids.count, layout: layout)
        guard (0..<StageTimings.phases).contains(phase) else { throw MPIPipelineError("phase \(phase) outside 0..<\(StageTimings.phases)") }
        let begin = DispatchTime.now().uptimeNanoseconds
        let out = try stage.run(try stage.embed(ids, sequence: sequence), chunk)
        let rows = allLogits ? chunk.rows : 1
        if let next {
            record(phase, since: begin)
            // the answer's receives first: the send below may wait for rank 1, which may wait for
            // its successor, ... which may wait for rank 0 to take an earlier answer
            let last = ranks - 1
            let answer = (try PostedReceive<Int64>(capacity: 2, from: last, tag: .result),
                          try PostedReceive<Float>(capacity: rows * c.vocab, from: last, tag: .logits))
            inFlight.append((sequence, rows, answer))
            try next.send(MPIPipeline.encodeHeader(chunk, all: allLogits, phase: phase), out, headerTag: .header, payloadTag: .hidden)
        } else {
            let logits = try stage.logits(out, chunk, all: allLogits)
            record(phase, since: begin)
            localResults.append((sequence, logits))
            inFlight.append((sequence, rows, nil))
        }
    }

    /// The logits of the oldest chunk not yet answered: (rows, vocab) for all logits, else (1, vocab).
    public func nextResult() throws -> (sequence: Int, logits: [Float]) {
        precondition(isDriver, "only rank 0 takes results")
        guard !inFlight.isEmpty else { throw MPIPipelineError("no chunk is in flight") }
        let expected = inFlight.removeFirst()
        guard let answer = expected.answer else { return localResults.removeFirst() }
        let last = ranks - 1
        let header = try answer.header.wait()
        guard header == [Int64(expected.sequence), Int64(expected.rows)] else {
            throw MPIPipelineError("rank \(last) answered \(header) where sequence \(expected.sequence) with \(expected.rows) rows was next")
        }
        let logits = try answer.logits.wait()
        guard logits.count == expected.rows * model.config.vocab else {
            throw MPIPipelineError("rank \(last) sent \(logits.count) logits for \(expected.rows) rows")
        }
        return (expected.sequence, logits)
    }

    /// Rank 0: tells every rank to stop and collects their timings (rank order). Others: nothing.
    @discardableResult
    public func stop() throws -> [StageTimings] {
        guard isDriver, !stopped else { return [timings] }
        stopped = true
        guard let next else { return [timings] }
        try next.send([0], headerTag: .header, payloadTag: .hidden)
        try next.finish()
        var all = [timings]
        for r in 1..<ranks {
            let counts = try mpi.receiveInts(from: r, tag: .report, capacity: StageTimings.phases)
            guard counts.count == StageTimings.phases, counts.allSatisfy({ $0 >= 0 && $0 < 1 << 26 }) else {
                throw MPIPipelineError("rank \(r) sent bad timings")
            }
            let n = Int(counts.reduce(0, +))
            let values = try mpi.receiveFloats(from: r, tag: .report, capacity: n).map(Double.init)
            guard values.count == n else { throw MPIPipelineError("rank \(r) sent \(values.count) timings, not \(n)") }
            var t = StageTimings(), offset = 0
            for (phase, count) in counts.enumerated() {
                t.seconds[phase] = Array(values[offset..<(offset + Int(count))])
                offset += Int(count)
            }
            all.append(t)
        }
        return all
    }

    /// Stops MPI on this rank (after stop() on rank 0 and serve() on the others).
    public func finalize() {
        try? next?.finish()
        try? toDriver?.finish()
        mpi.finalize()
    }
}
