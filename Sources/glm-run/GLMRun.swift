// GLMRun.swift — the command-line program's root command; each subcommand
// lives in its own file.

import ArgumentParser
import GLMRuntime

@main
struct GLMRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glm-run",
        abstract: "A CPU inference runtime for the GLM model family (GLM-130B, ChatGLM-6B).",
        discussion: """
        Kernels are chosen at run time from the CPU's instruction sets; threads default to one \
        per physical core (OMP_NUM_THREADS or --threads overrides). GLM_ISA=scalar forces the \
        portable reference kernels.
        """,
        version: "glm-run \(GLMRuntimeVersion.string)",
        subcommands: [RunCommand.self, ChatCommand.self, ServeCommand.self, ConvertCommand.self, InfoCommand.self, TokenizeCommand.self, DetokenizeCommand.self, LogitsCommand.self, EvalCommand.self, BenchCommand.self, PipelineCommand.self, PluginsCommand.self, TopologyCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
