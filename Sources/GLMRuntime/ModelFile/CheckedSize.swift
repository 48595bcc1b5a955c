// CheckedSize.swift — sizes computed from values a file supplies (shapes,
// element counts, byte counts) with overflow reported, not trapped: a corrupt
// file gets an error naming it instead of a crash.

enum CheckedSize {
    /// a * b, or nil when it overflows or either is negative.
    static func multiply(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : r
    }

    /// a + b, or nil when it overflows or either is negative.
    static func add(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : r
    }

    /// The product of non-negative dimensions, or nil on overflow.
    static func product(_ dims: [Int]) -> Int? {
        dims.reduce(Optional(1)) { acc, d in acc.flatMap { multiply($0, d) } }
    }
}
