// Where the services are: flags first, then environment variables, then the local defaults.

import ArgumentParser
import Jobs
import RabbitMQ

/// One setting's flag value, environment variable and default, resolved in that order.
struct Setting {
    let variable: String
    let defaultValue: String

    func resolve(_ flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let value = environment[variable], !value.isEmpty { return value }
        return defaultValue
    }

    static let databaseURL = Setting(
        variable: "INFMLLM_DATABASE_URL", defaultValue: "postgresql://infmllm:infmllm@127.0.0.1:5432/infmllm")
    static let amqpURL = Setting(variable: "INFMLLM_AMQP_URL", defaultValue: "amqp://guest:guest@127.0.0.1:5672/%2f")
    static let queuePrefix = Setting(variable: "INFMLLM_QUEUE_PREFIX", defaultValue: "infmllm")
    static let deliveryLimit = Setting(variable: "INFMLLM_DELIVERY_LIMIT", defaultValue: "5")
    static let migrationsDirectory = Setting(variable: "INFMLLM_MIGRATIONS_DIR", defaultValue: "migrations")
    static let maxImagePixels = Setting(variable: "INFMLLM_MAX_IMAGE_PIXELS", defaultValue: "89478485")
    static let republishAfter = Setting(variable: "INFMLLM_REPUBLISH_AFTER", defaultValue: "120")
    static let embeddingCache = Setting(variable: "INFMLLM_EMBEDDING_CACHE", defaultValue: "")
    static let embeddingCacheSize = Setting(variable: "INFMLLM_EMBEDDING_CACHE_SIZE", defaultValue: "20G")
    static let imageRoots = Setting(variable: "INFMLLM_IMAGE_ROOTS", defaultValue: "")
    static let allowPrivateURLs = Setting(variable: "INFMLLM_ALLOW_PRIVATE_URLS", defaultValue: "0")
    static let kernels = Setting(variable: "INFMLLM_KERNELS", defaultValue: "auto")

    /// Every setting the binaries read; ops/env.example lists each with its default.
    static let all = [
        databaseURL, amqpURL, queuePrefix, deliveryLimit, migrationsDirectory, maxImagePixels, republishAfter, kernels,
        embeddingCache, embeddingCacheSize, imageRoots, allowPrivateURLs,
    ]
}

/// The `--database-url` and `--amqp-url` flags that every command talking to the services shares.
struct ServiceOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "PostgreSQL URL.", discussion: "Env INFMLLM_DATABASE_URL; default \(Setting.databaseURL.defaultValue)",
            valueName: "url"))
    var databaseURL: String?

    @Option(
        name: .customLong("amqp-url"),
        help: ArgumentHelp(
            "RabbitMQ URL; for a cluster, one per node, comma-separated.",
            discussion: "Env INFMLLM_AMQP_URL; default \(Setting.amqpURL.defaultValue)",
            valueName: "url"))
    var amqpURL: String?

    @Option(
        name: .customLong("queue-prefix"),
        help: ArgumentHelp(
            "Prefix of the exchange and queue names.",
            discussion: "Env INFMLLM_QUEUE_PREFIX; default \(Setting.queuePrefix.defaultValue)", valueName: "name"))
    var queuePrefix: String?

    @Option(
        name: .customLong("delivery-limit"),
        help: ArgumentHelp(
            "Redeliveries before a task message is dead-lettered.",
            discussion: "Env INFMLLM_DELIVERY_LIMIT; default \(Setting.deliveryLimit.defaultValue)", valueName: "n"))
    var deliveryLimit: Int?

    @Option(
        name: .customLong("republish-after"),
        help: ArgumentHelp(
            "Seconds after which the workers' reconciler publishes again a queued task whose message the broker never confirmed (enqueue and retry publish their own job's at once).",
            discussion: "Env INFMLLM_REPUBLISH_AFTER; default \(Setting.republishAfter.defaultValue)",
            valueName: "seconds"))
    var republishAfter: Double?

    func resolvedDatabaseURL(_ environment: [String: String]) -> String {
        Setting.databaseURL.resolve(databaseURL, environment: environment)
    }

    func resolvedAMQPURL(_ environment: [String: String]) -> String {
        Setting.amqpURL.resolve(amqpURL, environment: environment)
    }

    func resolvedQueuePrefix(_ environment: [String: String]) -> String {
        Setting.queuePrefix.resolve(queuePrefix, environment: environment)
    }

    func resolvedDeliveryLimit(_ environment: [String: String]) throws -> Int {
        let text = Setting.deliveryLimit.resolve(deliveryLimit.map(String.init), environment: environment)
        guard let limit = Int(text), limit >= 0 else {
            throw ValidationError("the delivery limit must be a whole number ≥ 0, not \"\(text)\"")
        }
        return limit
    }

    func resolvedRepublishAfter(_ environment: [String: String]) throws -> Double {
        let text = Setting.republishAfter.resolve(republishAfter.map { String($0) }, environment: environment)
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
            throw ValidationError("--republish-after must be a number of seconds ≥ 0, not \"\(text)\"")
        }
        return seconds
    }

    /// The publisher of task messages for these services.
    func outbox(_ environment: [String: String], role: String) throws -> TaskOutbox {
        TaskOutbox(publisher: try publisher(environment, role: role))
    }

    /// - Parameter role: what the connection is for, in its `connection_name` ("enqueue", "worker w3 publisher").
    func publisher(_ environment: [String: String], role: String) throws -> RabbitTaskPublisher {
        RabbitTaskPublisher(
            urls: try AMQPURL.list(resolvedAMQPURL(environment)), prefix: resolvedQueuePrefix(environment),
            deliveryLimit: try resolvedDeliveryLimit(environment), connectionName: "infmllm \(role)")
    }
}

/// The decompression-bomb limit shared by every command that decodes images.
struct ImageOptions: ParsableArguments {
    @Option(
        name: .customLong("max-image-pixels"),
        help: ArgumentHelp(
            "Refuse images with more pixels (width x height) than this, before decoding them.",
            discussion: "Env INFMLLM_MAX_IMAGE_PIXELS; default \(Setting.maxImagePixels.defaultValue)", valueName: "n"))
    var maxImagePixels: Int?

    func resolvedMaxImagePixels(_ environment: [String: String]) throws -> Int {
        let text = Setting.maxImagePixels.resolve(maxImagePixels.map(String.init), environment: environment)
        guard let limit = Int(text), limit > 0 else {
            throw ValidationError("the image pixel limit must be a whole number > 0, not \"\(text)\"")
        }
        return limit
    }
}

/// Where `migrate` and `doctor` find the NNNN_name.sql files.
struct MigrationOptions: ParsableArguments {
    @Option(
        name: .customLong("migrations-dir"),
        help: ArgumentHelp(
            "Directory of NNNN_name.sql files.",
            discussion: "Env INFMLLM_MIGRATIONS_DIR; default ./migrations", valueName: "dir"))
    var migrationsDirectory: String?

    func resolvedDirectory(_ environment: [String: String]) -> String {
        Setting.migrationsDirectory.resolve(migrationsDirectory, environment: environment)
    }
}
