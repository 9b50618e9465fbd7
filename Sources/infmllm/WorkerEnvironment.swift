// The worker's options from its environment, for workers configured by variables (docker compose's .env, a
// Kubernetes ConfigMap): INFMLLM_<OPTION> for every option without a variable of its own, where the command line does
// not give it.

enum WorkerEnvironment {
    /// The worker options read from `variable(option)`. Options that are `Setting`s (the services, the embedding
    /// cache, image roots and pixels, private URLs, kernels) read their own variables where they are resolved.
    static let options = [
        "model", "model-name", "name", "tokenizer", "batch-size", "prefetch", "step-tokens", "prefill-chunk", "device",
        "dtype", "threads", "max-memory", "consumer-timeout", "fetch-timeout", "fetch-attempts", "fetch-concurrency",
        "max-image-bytes", "read-retries", "read-retry-after", "metrics-address", "heartbeat", "lease",
        "requeue-undelivered-after", "log-format", "log-level",
    ]

    /// `INFMLLM_BATCH_SIZE` for `batch-size`.
    static func variable(_ option: String) -> String {
        "INFMLLM_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The command line (without the program's name) with, for `worker`, `--option=value` added for each option whose
    /// variable is set (not empty) and that the command line does not give: a flag wins over its variable.
    static func arguments(_ arguments: [String], environment: [String: String]) -> [String] {
        guard arguments.first == "worker" else { return arguments }
        let given = Set(
            arguments.dropFirst().prefix { $0 != "--" }.compactMap { argument -> String? in
                guard argument.hasPrefix("--") else { return nil }
                return String(argument.dropFirst(2).prefix { $0 != "=" })
            })
        let added = options.compactMap { option -> String? in
            guard !given.contains(option), let value = environment[variable(option)], !value.isEmpty else { return nil }
            return "--\(option)=\(value)"
        }
        return [arguments[0]] + added + arguments.dropFirst()
    }
}
