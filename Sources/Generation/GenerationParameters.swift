// Decoding settings, with the meaning Hugging Face's `generate` gives them when called with inputs_embeds.

/// How tokens are chosen. Defaults are greedy decoding of at most 30 new tokens.
public struct GenerationParameters: Sendable, Codable, Hashable {
    /// New tokens at most (the prompt is not counted).
    public var maxNewTokens: Int = 30
    /// End-of-sequence is forbidden until this many tokens are generated.
    public var minNewTokens: Int = 0
    /// Beam search with this many beams when above 1.
    public var beamCount: Int = 1
    /// Finished beams score sum(log p) / length^lengthPenalty, with the length `beamRules` count (a double, as
    /// Python's float, so that the powers are the ones transformers computes).
    public var lengthPenalty: Double = 1
    /// Sampling instead of argmax when set (and beamCount is 1).
    public var temperature: Float?
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches topP.
    public var topP: Float = 1
    /// Keep only the topK most likely tokens when sampling; 0 keeps all.
    public var topK: Int = 0
    /// Seed of the sampler's generator: the same seed gives the same tokens.
    public var seed: UInt64 = 0
    /// Whose beam search rules a beam group follows (ignored with one beam).
    public var beamRules: BeamRules = .transformers431

    enum CodingKeys: String, CodingKey {
        case maxNewTokens = "max_new_tokens", minNewTokens = "min_new_tokens", beamCount = "num_beams"
        case lengthPenalty = "length_penalty", temperature, topP = "top_p", topK = "top_k", seed
        case beamRules = "beam_rules"
    }

    public init() {}

    /// Any key may be missing (a job's settings written by hand, say): it takes its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = GenerationParameters()
        maxNewTokens = try container.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? defaults.maxNewTokens
        minNewTokens = try container.decodeIfPresent(Int.self, forKey: .minNewTokens) ?? defaults.minNewTokens
        beamCount = try container.decodeIfPresent(Int.self, forKey: .beamCount) ?? defaults.beamCount
        lengthPenalty = try container.decodeIfPresent(Double.self, forKey: .lengthPenalty) ?? defaults.lengthPenalty
        temperature = try container.decodeIfPresent(Float.self, forKey: .temperature)
        topP = try container.decodeIfPresent(Float.self, forKey: .topP) ?? defaults.topP
        topK = try container.decodeIfPresent(Int.self, forKey: .topK) ?? defaults.topK
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? defaults.seed
        beamRules = try container.decodeIfPresent(BeamRules.self, forKey: .beamRules) ?? defaults.beamRules
    }

    /// `beam_rules` is written only for beam search, where it decides tokens: greedy and sampled settings keep the
    /// JSON they had before the key existed, so `--skip-done` still finds their results.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(maxNewTokens, forKey: .maxNewTokens)
        try container.encode(minNewTokens, forKey: .minNewTokens)
        try container.encode(beamCount, forKey: .beamCount)
        try container.encode(lengthPenalty, forKey: .lengthPenalty)
        try container.encodeIfPresent(temperature, forKey: .temperature)
        try container.encode(topP, forKey: .topP)
        try container.encode(topK, forKey: .topK)
        try container.encode(seed, forKey: .seed)
        if beamCount > 1 { try container.encode(beamRules, forKey: .beamRules) }
    }

    public var isSampling: Bool { temperature != nil && beamCount == 1 }

    /// `base` (the defaults, or a preset's settings) with every given value applied, validated: how command-line
    /// flags and manifest fields become parameters.
    public static func overriding(
        _ base: GenerationParameters = GenerationParameters(),
        maxNewTokens: Int? = nil, minNewTokens: Int? = nil, beams: Int? = nil, lengthPenalty: Double? = nil,
        temperature: Float? = nil, topP: Float? = nil, topK: Int? = nil, seed: UInt64? = nil,
        beamRules: BeamRules? = nil
    ) throws -> GenerationParameters {
        var parameters = base
        if let maxNewTokens { parameters.maxNewTokens = maxNewTokens }
        if let minNewTokens {
            parameters.minNewTokens = minNewTokens
        } else if let maxNewTokens {
            // A preset's minimum gives way to a smaller maximum asked for.
            parameters.minNewTokens = min(parameters.minNewTokens, maxNewTokens)
        }
        if let beams { parameters.beamCount = beams }
        if let lengthPenalty { parameters.lengthPenalty = lengthPenalty }
        if let temperature {
            parameters.temperature = temperature
            // A temperature asks for sampling, which is one beam: a preset's beams give way unless beams are given.
            if beams == nil { parameters.beamCount = 1 }
        }
        if let topP { parameters.topP = topP }
        if let topK { parameters.topK = topK }
        if let seed { parameters.seed = seed }
        if let beamRules { parameters.beamRules = beamRules }
        try parameters.validate()
        return parameters
    }

    /// The most new tokens a request may ask for, whatever the model's context: sizes computed from it cannot
    /// overflow.
    public static let maxNewTokensLimit = 1 << 20

    /// Checks the values a request may carry.
    public func validate() throws {
        func require(_ condition: Bool, _ reason: String) throws {
            if !condition { throw GenerationError.badParameters(reason) }
        }
        try require(
            maxNewTokens >= 1 && maxNewTokens <= Self.maxNewTokensLimit,
            "max_new_tokens must be between 1 and \(Self.maxNewTokensLimit)")
        try require(
            minNewTokens >= 0 && minNewTokens <= maxNewTokens, "min_new_tokens must be between 0 and max_new_tokens")
        try require(beamCount >= 1 && beamCount <= 64, "num_beams must be between 1 and 64")
        try require(lengthPenalty.isFinite, "length_penalty must be a number")
        try require(temperature.map { $0 > 0 && $0.isFinite } ?? true, "temperature must be positive")
        try require(topP > 0 && topP <= 1, "top_p must be in (0, 1]")
        try require(topK >= 0, "top_k must not be negative")
    }
}

/// The transformers release whose beam search a beam group reproduces token for token. The released InfMLLM
/// checkpoints were evaluated with 4.31, the default; 5.x scores and stops differently once a beam ends with EOS.
public enum BeamRules: String, Sendable, Codable, Hashable, CaseIterable {
    case transformers431 = "transformers-4.31"
    case transformers5 = "transformers-5"
}

/// A generation request that cannot run.
public enum GenerationError: Error, CustomStringConvertible, Sendable {
    case badParameters(String)

    public var description: String {
        switch self {
        case let .badParameters(reason): "invalid decoding parameters: \(reason)"
        }
    }
}
