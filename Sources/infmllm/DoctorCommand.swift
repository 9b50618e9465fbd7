// `infmllm doctor`: checks that PostgreSQL and RabbitMQ are reachable and set up for infmllm, names the CPU kernels
// this machine runs, and with --cuda checks that it can run `--device cuda`.

import ArgumentParser
import CPUBackend
import CUDABackend
import Foundation
import Jobs
import Postgres
import RabbitMQ

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the services: PostgreSQL reachable and migrated, RabbitMQ reachable and its queues declared.",
        discussion: "Exits 1 when any check fails, naming what to do about it."
    )

    @OptionGroup var services: ServiceOptions

    @OptionGroup var migrations: MigrationOptions

    @Flag(help: "Print the checks as one JSON object.")
    var json = false

    @Option(help: "Also report this model's task queue (its name or directory, as given to enqueue).")
    var model: String?

    @Flag(
        help: ArgumentHelp(
            "Also check that --device cuda can run here: the driver, the GPUs, cuBLAS, and NVRTC building the kernels.",
            discussion: "The kernels it compiles are cached where workers look for them (INFMLLM_CUDA_CACHE)."))
    var cuda = false

    struct Check: Encodable {
        let name: String
        let ok: Bool
        let detail: String
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var checks = [
            check("cpu") { try cpuCheck(environment) },
            check("postgres") { try postgresCheck(environment) },
            check("rabbitmq") { try rabbitCheck(environment) },
        ]
        if cuda { checks.append(check("cuda") { try cudaCheck() }) }
        if json {
            print(try JSONOutput.encode(["checks": checks]))
        } else {
            for check in checks {
                print("\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)")
            }
        }
        if checks.contains(where: { !$0.ok }) { throw ExitCode.failure }
    }

    private func check(_ name: String, _ body: () throws -> String) -> Check {
        do {
            return Check(name: name, ok: true, detail: try body())
        } catch {
            return Check(name: name, ok: false, detail: "\(error)")
        }
    }

    /// The kernel set workers here use (after INFMLLM_KERNELS) and why, and what `--dtype auto` makes of it.
    private func cpuCheck(_ environment: [String: String]) throws -> String {
        let limit = try ComputeOptions.kernelLimit(named: Setting.kernels.resolve(nil, environment: environment))
        let auto =
            KernelSet.chosen(limit: limit).multipliesBF16Fast
            ? "bf16 for checkpoints stored in bf16 or f16" : "f32 (the bf16 kernels would be slower here)"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, kernels \(KernelSet.explanation(limit: limit)); "
            + "--dtype auto: \(auto)"
    }

    private func postgresCheck(_ environment: [String: String]) throws -> String {
        let connection = try PostgresConnection(url: services.resolvedDatabaseURL(environment))
        let version = connection.serverVersion
        let directory = migrations.resolvedDirectory(environment)
        let pending = try Migrator(connection: connection).pending(Migration.load(directory: directory))
        let state =
            pending.isEmpty
            ? "schema current" : "\(pending.count) migration(s) pending: run `infmllm migrate`"
        guard pending.isEmpty else { throw DoctorFailure(message: "\(connection.target): \(state)") }
        return "\(connection.target), server \(version / 10000).\(version % 10000), \(state)"
    }

    private func rabbitCheck(_ environment: [String: String]) throws -> String {
        let urls = try AMQPURL.list(services.resolvedAMQPURL(environment))
        let connection = try AMQPConnection.first(of: urls, name: "infmllm doctor")
        let topology = TaskTopology(
            prefix: services.resolvedQueuePrefix(environment), model: model ?? "",
            deliveryLimit: try services.resolvedDeliveryLimit(environment))
        var queues = [topology.rejectedQueue]
        if model != nil {
            try topology.declare(on: connection)
            queues = TaskPriority.lanes.map(topology.queue) + [topology.deadLetterQueue]
        } else {
            try topology.declareShared(on: connection)
        }
        let counts = try queues.map { queue in
            let counts = try connection.queueCounts(queue)
            return "queue \(queue): \(counts.messageCount) ready, \(counts.consumerCount) consumer(s)"
        }
        return "\(connection.url), " + counts.joined(separator: "; ")
    }
}

extension DoctorCommand {
    /// Opens the first GPU as `--device cuda` would and reports every GPU and the free memory.
    private func cudaCheck() throws -> String {
        let devices = try CUDADevice.all()
        let backend = try CUDABackend(precision: .bf16)
        let memory = try backend.memoryInfo()
        return devices.map(\.description).joined(separator: "; ") + "; NVRTC \(try KernelCompiler.nvrtcVersion()); "
            + "\(backend.summary); \(memory.free >> 20) MiB free on GPU 0"
    }
}

struct DoctorFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
