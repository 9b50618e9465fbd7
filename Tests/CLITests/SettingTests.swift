// Settings resolve flag first, then environment variable, then the documented default.

import ArgumentParser
import TestSupport
import Testing

@testable import infmllm

@Suite struct SettingTests {
    @Test func flagWinsOverEnvironmentWhichWinsOverDefault() {
        let setting = Setting.databaseURL
        let environment = ["INFMLLM_DATABASE_URL": "postgresql://env/db"]
        #expect(setting.resolve("postgresql://flag/db", environment: environment) == "postgresql://flag/db")
        #expect(setting.resolve(nil, environment: environment) == "postgresql://env/db")
        #expect(setting.resolve(nil, environment: [:]) == "postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm")
        #expect(setting.resolve("", environment: ["INFMLLM_DATABASE_URL": ""]) == setting.defaultValue)
    }

    @Test func defaultsPointAtTheLocalServices() {
        #expect(Setting.amqpURL.defaultValue.contains("127.0.0.1:5672"))
        #expect(Setting.databaseURL.defaultValue.contains("127.0.0.1:5432"))
    }

    @Test func parsedFlagsReachTheResolvedSettings() throws {
        let command = try MigrateCommand.parse(["--database-url", "postgresql://x/y", "--migrations-dir", "m"])
        #expect(command.services.resolvedDatabaseURL(["INFMLLM_DATABASE_URL": "ignored"]) == "postgresql://x/y")
        #expect(command.migrations.resolvedDirectory([:]) == "m")
    }

    @Test func aBadDeliveryLimitIsAValidationError() throws {
        let options = try ServiceOptions.parse([])
        #expect(throws: ValidationError.self) { try options.resolvedDeliveryLimit(["INFMLLM_DELIVERY_LIMIT": "many"]) }
        #expect(try options.resolvedDeliveryLimit([:]) == 5)
    }

    /// Values that would loop without pause, trap or never stop are refused when the command is parsed.
    @Test(arguments: [
        ["progress", "j", "--interval", "0"], ["progress", "j", "--interval", "nan"],
        ["progress", "j", "--timeout", "-1"],
        ["bench", "kernels", "--seconds", "nan"], ["bench", "kernels", "--seconds", "1e300"],
        ["bench", "kernels", "--shapes", "-1,4,4"], ["bench", "kernels", "--shapes", "9223372036854775807,2,2"],
        ["bench", "tokenizer", "--tokenizer", "t", "--corpus", "c", "--passes", "-1"],
        ["bench", "images", "--directory", "d", "--passes", "0"],
    ])
    func valuesThatCannotWorkAreRefusedAtParsing(_ arguments: [String]) {
        #expect(throws: (any Error).self) { _ = try InfMLLM.parseAsRoot(arguments) }
    }

    @Test func everySettingIsListedInTheEnvironmentExample() throws {
        let example = try String(contentsOfFile: RepositoryFiles.path("ops/env.example"), encoding: .utf8)
        for setting in Setting.all {
            #expect(example.contains("\(setting.variable)=\(setting.defaultValue)"), "\(setting.variable)")
        }
        for option in WorkerEnvironment.options {
            #expect(example.contains("\n\(WorkerEnvironment.variable(option))=\n"), "\(option)")
        }
    }
}

@Suite struct ProgressEstimateTests {
    @Test func theTimeLeftIsKnownOnlyFromARateThatSaysSomething() {
        #expect(ProgressCommand.eta(remaining: 100, rate: 2) == 50)
        #expect(ProgressCommand.eta(remaining: 100, rate: 0) == nil, "no task ended yet")
        #expect(ProgressCommand.eta(remaining: 144, rate: 1e-70) == nil, "beyond a year, not a trap")
        #expect(ProgressCommand.eta(remaining: 1, rate: .nan) == nil)
        // The job's recent rate until this command has seen tasks end for a while, then what it saw.
        #expect(ProgressCommand.rate(watched: 0, ended: 0, recent: 0.5) == 0.5)
        #expect(ProgressCommand.rate(watched: 30, ended: 0, recent: 0.5) == 0.5)
        #expect(ProgressCommand.rate(watched: 30, ended: 3, recent: 0.5) == 0.1)
        #expect(ProgressCommand.rate(watched: 90, ended: 0, recent: 0.5) == 0)
        #expect(ProgressCommand.rate(watched: 5, ended: 0, recent: nil) == 0)
        #expect(ProgressCommand.clock(75) == "1:15")
        #expect(ProgressCommand.clock(3 * 3600 + 5) == "3:00:05")
        #expect(ProgressCommand.clock(3 * 86_400 + 3661) == "3d 01:01:01")
    }
}
