// Topology.swift — the machine as hwloc sees it, and the OpenMP thread policy
// (one thread per physical core by default; OMP_NUM_THREADS or an explicit
// count overrides it; threads optionally bound to cores).

internal import CKernels

public struct Topology: Sendable, Codable, Equatable {
    /// The CPU's model name as hwloc reports it ("" if unknown).
    public var cpuModel: String
    public var packages: Int
    public var numaNodes: Int
    public var cores: Int
    public var hardwareThreads: Int
    public var l1dBytes: Int
    public var l2Bytes: Int
    public var l3Bytes: Int
    public var l3Instances: Int
    public var memoryBytes: Int

    public static func query() throws -> Topology {
        var t = glmk_topology()
        try KernelError.check(glmk_topology_query(&t), "topology", "hwloc could not load the topology")
        let model = withUnsafeBytes(of: t.cpu_model) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return Topology(cpuModel: model, packages: Int(t.packages), numaNodes: Int(t.numa_nodes), cores: Int(t.cores),
                        hardwareThreads: Int(t.pus), l1dBytes: Int(t.l1d_bytes), l2Bytes: Int(t.l2_bytes),
                        l3Bytes: Int(t.l3_bytes), l3Instances: Int(t.l3_instances), memoryBytes: Int(t.memory_bytes))
    }
}

public enum Threads {
    /// OMP_NUM_THREADS when set, otherwise one per physical core.
    public static var defaultCount: Int { Int(glmk_threads_default()) }

    /// The count parallel kernels use now.
    public static var current: Int { Int(glmk_threads_current()) }

    /// For the calling thread only (a pipeline stage): `count` kernel threads bound
    /// to physical cores firstCore ..< firstCore + count.
    public static func configureStage(count: Int, firstCore: Int) throws {
        try KernelError.check(glmk_threads_configure_stage(Int32(count), Int32(firstCore)), "threads", "binding a stage to cores \(firstCore)..<\(firstCore + count)")
    }

    /// Sets the thread count (nil: the default) and binds thread i to core i when `bind`.
    public static func configure(count: Int? = nil, bind: Bool = false) throws {
        if let count, count <= 0 {
            throw KernelError.invalidArgument(operation: "threads", detail: "thread count must be positive, got \(count)")
        }
        try KernelError.check(glmk_threads_configure(Int32(count ?? 0), bind ? 1 : 0), "threads", "binding threads to cores")
    }
}
