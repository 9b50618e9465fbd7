// Every subcommand explains itself with --help.

import ArgumentParser
import Testing

@testable import infmllm

@Suite struct HelpTests {
    static let commands: [any ParsableCommand.Type] =
        [
            InfMLLM.self, MigrateCommand.self, DoctorCommand.self, BenchCommand.self, BenchTokenizerCommand.self,
            BenchImagesCommand.self, InferCommand.self, ModelCommand.self, ModelInitCommand.self,
        ]

    @Test(arguments: commands.map { ObjectIdentifier($0) })
    func helpNamesTheCommandAndItsOptions(_ id: ObjectIdentifier) throws {
        let command = try #require(Self.commands.first { ObjectIdentifier($0) == id })
        let help = InfMLLM.helpMessage(for: command)
        #expect(help.contains("USAGE:"))
        #expect(help.contains("-h, --help"))
        if command == MigrateCommand.self || command == DoctorCommand.self {
            #expect(help.contains("--database-url"))
            #expect(help.contains("INFMLLM_DATABASE_URL"))
        }
    }
}
