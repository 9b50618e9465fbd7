// The worker's options from INFMLLM_<OPTION> variables: added where the command line does not give them (a flag wins),
// for every worker option without a variable of its own, through the real binary too.

import Foundation
import TestSupport
import Testing

@testable import infmllm

@Suite struct WorkerEnvironmentTests {
    @Test func variablesFillTheOptionsTheCommandLineLacks() {
        let environment = [
            "INFMLLM_BATCH_SIZE": "16", "INFMLLM_DEVICE": "cuda:1", "INFMLLM_THREADS": "", "INFMLLM_LEASE": "600",
            "INFMLLM_METRICS_ADDRESS": "0.0.0.0:9400",
        ]
        let arguments = WorkerEnvironment.arguments(
            ["worker", "--model", "/m", "--device", "cpu", "--lease=60", "--", "--metrics-address"],
            environment: environment)
        // Given on the command line (either form), the flag stays and its variable is not added; an empty variable
        // is unset; what follows `--` is not an option.
        #expect(
            arguments == [
                "worker", "--batch-size=16", "--metrics-address=0.0.0.0:9400", "--model", "/m", "--device", "cpu",
                "--lease=60", "--", "--metrics-address",
            ])
        // Other commands read no such variables.
        #expect(
            WorkerEnvironment.arguments(["infer", "--model", "/m"], environment: environment) == [
                "infer", "--model", "/m",
            ])
        #expect(WorkerEnvironment.variable("requeue-undelivered-after") == "INFMLLM_REQUEUE_UNDELIVERED_AFTER")
    }

    /// Every worker option has a variable: its own `Setting`'s, or INFMLLM_<OPTION> here.
    @Test func everyWorkerOptionHasAVariable() {
        let help = WorkerCommand.helpMessage(columns: 400)
        let listed = Set(
            help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," }).compactMap { word -> String? in
                guard word.hasPrefix("--"), word.count > 2 else { return nil }
                return String(word.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            })
        let settings: Set = [
            "database-url", "amqp-url", "queue-prefix", "delivery-limit", "republish-after", "embedding-cache",
            "embedding-cache-size", "image-roots", "max-image-pixels", "allow-private-urls", "kernels",
        ]
        let options = listed.filter { !["help", "version"].contains($0) && !$0.isEmpty }
        #expect(options.subtracting(settings) == Set(WorkerEnvironment.options), "\(options)")
        #expect(settings.isSubset(of: options))
    }

    /// The binary applies them before parsing: a variable's value is validated as the flag's would be, and a flag
    /// given on the command line wins over its variable.
    @Test func theWorkerBinaryReadsThem() throws {
        let binary = try RepositoryFiles.binary()
        let refused = try ProcessResult.run(
            binary, ["worker"], environment: ["INFMLLM_MODEL": "/nonexistent", "INFMLLM_BATCH_SIZE": "0"])
        #expect(refused.status != 0 && refused.output.contains("--batch-size"), "\(refused.output)")
        let flagWins = try ProcessResult.run(
            binary, ["worker", "--batch-size", "2"],
            environment: ["INFMLLM_MODEL": "/nonexistent", "INFMLLM_BATCH_SIZE": "0", "INFMLLM_PREFILL_CHUNK": "600"])
        #expect(
            flagWins.status != 0
                && flagWins.output.contains("--prefill-chunk (600) must be at most --step-tokens (512)"),
            "\(flagWins.output)")
    }
}
