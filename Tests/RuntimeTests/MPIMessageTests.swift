// MPIMessageTests.swift — the chunk header the ranks pass on (MPIPipeline):
// what rank 0 encodes decodes to the same chunk, and a header that does not
// fit (too short, rows beyond the cache, a count that disagrees with its
// length, positions outside Int32, an unknown phase) is an error, never a trap.
// The transfers themselves run under mpirun in scripts/mpi-test.

@testable import GLMDistributed
import GLMRuntime
import Testing

@Suite("MPI chunk headers")
struct MPIMessageTests {
    @Test("a header round-trips")
    func header_roundTrips() throws {
        let chunk = StageChunk(sequence: 3, start: 17, positions: [17, 18, 19], blocks: [0, 1, 2], bidirectionalLength: 12)
        let (decoded, all, phase) = try MPIPipeline.decodeHeader(MPIPipeline.encodeHeader(chunk, all: true, phase: 2), maxRows: 64)
        #expect(decoded == chunk && all && phase == 2)
    }

    @Test("hostile headers are errors")
    func hostileHeaders_areErrors() {
        let good = MPIPipeline.encodeHeader(StageChunk(sequence: 0, start: 0, positions: [0, 1], blocks: [0, 0], bidirectionalLength: 2), all: false, phase: 0)
        var tooManyRows = good; tooManyRows[4] = 1000
        var negativeRows = good; negativeRows[4] = -1
        var hugeRows = good; hugeRows[4] = .max
        var badPosition = good; badPosition[7] = Int64(Int32.max) + 1
        var badPhase = good; badPhase[6] = 99
        for header in [[], Array(good.prefix(5)), Array(good.dropLast()), good + [0], tooManyRows, negativeRows, hugeRows, badPosition, badPhase] {
            #expect(throws: MPIPipelineError.self) { try MPIPipeline.decodeHeader(header, maxRows: 64) }
        }
    }
}
