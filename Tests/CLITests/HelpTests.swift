// Every subcommand explains itself with --help.

import ArgumentParser
import Testing

@testable import infmllm

@Suite struct HelpTests {
    static let commands: [any ParsableCommand.Type] =
        [
            InfMLLM.self, MigrateCommand.self, DoctorCommand.self, BenchCommand.self, BenchTokenizerCommand.self,
            BenchImagesCommand.self, InferCommand.self, ModelCommand.self, ModelInitCommand.self, EnqueueCommand.self,
            WorkerCommand.self, ProgressCommand.self, JobsCommand.self, ShowCommand.self, RetryCommand.self,
            CancelCommand.self, ExportCommand.self,
        ]

    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func helpNamesTheCommandAndItsOptions(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.commands.first { ObjectIdentifier($0) == id })
        let help = InfMLLM.helpMessage(for: command)
        #expect(help.contains("USAGE:"))
        #expect(help.contains("-h, --help"))
        if [MigrateCommand.self, DoctorCommand.self, EnqueueCommand.self, WorkerCommand.self, JobsCommand.self]
            .contains(
                where: { $0 == command })
        {
            #expect(help.contains("--database-url"))
            #expect(help.contains("INFMLLM_DATABASE_URL"))
        }
    }
}
