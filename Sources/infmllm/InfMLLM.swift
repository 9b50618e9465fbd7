// The `infmllm` command: the composition root that wires the libraries to the local services.

import ArgumentParser
import Foundation

@main
struct InfMLLM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infmllm",
        abstract: "Batch captioning, visual question answering and grounding with InfMLLM.",
        discussion: """
            Settings come from flags, then environment variables, then defaults that point at the local \
            services started by ops/services.sh. Every setting and its variable is listed in ops/env.example; \
            every other worker option is read from INFMLLM_<OPTION> (INFMLLM_BATCH_SIZE for --batch-size) when \
            the command line does not give it.
            """,
        version: "0.1.0",
        subcommands: [
            EnqueueCommand.self, WorkerCommand.self, ProgressCommand.self, JobsCommand.self, ShowCommand.self,
            RetryCommand.self, CancelCommand.self, PriorityCommand.self, DeleteCommand.self, ExportCommand.self,
            InferCommand.self,
            ModelCommand.self,
            MigrateCommand.self, DoctorCommand.self, BenchCommand.self,
        ]
    )

    /// Runs the command line, with the worker options its environment sets (`WorkerEnvironment`).
    static func main() async {
        await main(
            WorkerEnvironment.arguments(
                Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment))
    }
}
