// ServeCommand.swift — `glm-run serve [MODEL] --host 127.0.0.1 --port 8080`:
// the OpenAI-compatible HTTP server (Sources/GLMServer). It listens at once
// and answers /health with 503 until the model is loaded; SIGINT or SIGTERM
// shuts it down gracefully.

import ArgumentParser
import Foundation
import GLMRuntime
import GLMServer
import Hummingbird

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over an OpenAI-compatible HTTP API.",
        discussion: """
        Routes: POST /v1/chat/completions (stream: true for Server-Sent Events), POST /v1/completions \
        (a prompt with [MASK] fills its blanks), GET /v1/models, GET /health (503 while loading), \
        POST /tokenize, POST /detokenize, GET /metrics (Prometheus text). Request fields: max_tokens, \
        temperature, top_p, top_k, seed, stop, repetition_penalty, stream; n > 1 is refused; unknown \
        fields are ignored. Errors are OpenAI error JSON. Up to --parallel requests generate at once, \
        batched into one decode step (continuous batching: a request joins at the next step and leaves \
        when done); more wait in arrival order, up to --queue (then 503).

        Examples:
          glm-run serve --port 8080
          curl -s localhost:8080/v1/chat/completions \\
            -d '{"messages": [{"role": "user", "content": "Hi"}]}'
        See docs/serving.md.
        """
    )

    @Argument(help: "The model file (.gguf); default: the small bilingual model shipped in models/.")
    var model: String?

    @Option(help: "Address to listen on (loopback by default).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 8080
    @Option(help: "Require 'Authorization: Bearer KEY' on every route but /health (also GLM_API_KEY).") var apiKey: String?
    @Option(help: "Requests that generate together, batched into one decode step.") var parallel = 8
    @Option(help: "Tokens each of the --parallel KV caches holds (default: the model's context).") var context: Int?
    @Option(help: "Requests that may wait for a free sequence at once; more get 503.") var queue = 32
    @Option(help: "Largest request body in bytes; larger gets 413.") var maxBody = 1 << 20
    @Option(help: "max_tokens when a request gives none.") var defaultMaxTokens = 256
    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be in 1...256, got \(parallel)") }
        if let context, !(1...(1 << 20)).contains(context) { throw ValidationError("--context must be in 1...2^20, got \(context)") }
        guard (1...4096).contains(queue) else { throw ValidationError("--queue must be in 1...4096, got \(queue)") }
        guard (1024...(1 << 30)).contains(maxBody) else { throw ValidationError("--max-body must be in 1024...2^30, got \(maxBody)") }
        guard (1...GenerateParameters.maxTokensLimit).contains(defaultMaxTokens) else {
            throw ValidationError("--default-max-tokens must be in 1...\(GenerateParameters.maxTokensLimit)")
        }
    }

    func run() async throws {
        guard let path = model ?? DefaultModel.path() else {
            throw CLIError("no model file given and no default model found (models/\(DefaultModel.fileName)): glm-run serve <model.gguf>")
        }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
        try runtime.apply()
        let runtime = self.runtime
        let metrics = ServerMetrics()
        let worker = ModelWorker(queueLimit: queue, parallel: parallel, contextPerSequence: context, metrics: metrics) {
            let glm = try loadModel(path)
            guard let tokenizer = try TextTokenizers.load(gguf: glm.file!) else { throw CLIError("\(path) has no tokenizer") }
            let kernels = try runtime.kernelSet(for: glm) // the registry's checks (plugins) before serving
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            return LoadedModel(name: name, model: glm, codec: PromptBuilder(tokenizer: tokenizer, config: glm.config),
                               kernels: kernels, fusion: !runtime.noFusion, kvType: runtime.kvType)
        }
        var options = ServerOptions()
        options.apiKey = apiKey ?? ProcessInfo.processInfo.environment["GLM_API_KEY"]
        options.maxBodyBytes = maxBody
        options.defaultMaxTokens = defaultMaxTokens
        let router = GLMServer.router(worker: worker, metrics: metrics, options: options)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "glm-run"),
                              onServerRunning: { channel in
                                  let address = channel.localAddress.map { "\($0)" } ?? "?"
                                  printError("serving \(path) on \(address) (model loading; GET /health says when it is ready)")
                              })
        try await app.runService()
        printError("server stopped")
    }
}
