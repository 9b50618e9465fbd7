// Beam search (and greedy decoding) against transformers' own `generate` of releases 4.31 and 5.x, on the scripted
// models of tools/reference/beam_fixtures.py, which end hypotheses with EOS at every step: the finishing, scoring,
// early stopping and length-limit rules of each release, token for token.

import Foundation
import Jobs
import Models
import Tensors
import Testing

@testable import Generation

struct BeamCases: Decodable {
    struct Case: Decodable {
        let seed: UInt64
        let vocab: Int
        let spread: Double
        let eos_bias: Double
        let settings: [String: Double]
        let ids: [Int]
        /// The sum of the ids' log-probabilities.
        let logprob: Double
    }

    let transformers: String
    let bos: Int
    let eos: Int
    let cases: [Case]

    static func load(_ file: String) throws -> BeamCases {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(file)
        return try JSONDecoder().decode(BeamCases.self, from: Data(contentsOf: url))
    }
}

/// The scripted model of one case: the logit of `token` after `step` generated tokens, the last of them `previous`.
struct ScriptedModel {
    let scripted: BeamCases.Case
    let eos: Int

    func logits(step: Int, previous: Int) -> [Float] {
        (0..<scripted.vocab).map { token in
            var x = scripted.seed
            for value in [step, previous, token] {
                var mixer = SplitMix64(seed: x ^ UInt64(value))
                x = mixer.next()
            }
            let unit = Double(x >> 11) * 0x1p-53
            let value = scripted.spread * (2 * unit - 1) + (token == eos ? scripted.eos_bias : 0)
            return Float(value)
        }
    }

    /// Runs a request's decoding to the end the way the scheduler feeds it: each row's logits follow its own tokens.
    func generate(_ parameters: GenerationParameters, bos: Int) -> GeneratedSequence {
        var decoding = parameters.decoding(vocabulary: scripted.vocab, eos: eos, stream: 0)
        var rows: [[Int]] = [[]]
        var logits = self.logits(step: 0, previous: bos)
        while true {
            switch decoding.advance(logits[...]) {
            case let .finished(sequence): return sequence
            case let .next(tokens, sources):
                rows = zip(tokens, sources).map { token, source in rows[source] + [token] }
                logits = rows.flatMap { self.logits(step: $0.count, previous: $0.last!) }
            }
        }
    }
}

@Suite struct BeamRulesTests {
    /// The case's settings as flags. `max_length` and `min_length` (the evaluation scripts' form) count the dummy
    /// BOS, so they are one more than the new tokens, as README's table of the paper's settings says.
    static func parameters(_ settings: [String: Double], rules: BeamRules) throws -> GenerationParameters {
        try GenerationParameters.overriding(
            maxNewTokens: settings["max_new_tokens"].map { Int($0) } ?? settings["max_length"].map { Int($0) - 1 },
            minNewTokens: settings["min_new_tokens"].map { Int($0) } ?? settings["min_length"].map { Int($0) - 1 },
            beams: settings["num_beams"].map { Int($0) }, lengthPenalty: settings["length_penalty"],
            beamRules: rules)
    }

    @Test(arguments: [
        ("beam_cases_4.31.json", BeamRules.transformers431), ("beam_cases_5.json", BeamRules.transformers5),
    ])
    func everyCaseMatchesTransformers(file: String, rules: BeamRules) throws {
        let fixture = try BeamCases.load(file)
        #expect(fixture.transformers.hasPrefix(rules == .transformers431 ? "4.31." : "5."))
        var ended = 0, differing: [String] = []
        for (index, scripted) in fixture.cases.enumerated() {
            let parameters = try Self.parameters(scripted.settings, rules: rules)
            let sequence = ScriptedModel(scripted: scripted, eos: fixture.eos).generate(parameters, bos: fixture.bos)
            let ids = sequence.tokens
            if ids.last == fixture.eos { ended += 1 }
            if ids != scripted.ids { differing.append("case \(index) \(scripted.settings): \(ids) != \(scripted.ids)") }
            let logprob = Double(sequence.logProbability)
            if !(abs(logprob - scripted.logprob) <= 1e-4 + 1e-5 * abs(scripted.logprob)) {
                differing.append(
                    "case \(index) \(scripted.settings): log-probability \(logprob) != \(scripted.logprob)")
            }
        }
        #expect(differing.isEmpty, "\(differing.count) of \(fixture.cases.count): \(differing.prefix(5))")
        // The cases exercise what the releases differ on: sequences that end with EOS, and ones that reach the limit.
        #expect(ended > fixture.cases.count / 4 && ended < fixture.cases.count * 3 / 4)
    }

    /// The two releases' fixtures are not interchangeable: each rule set fails on some of the other's cases, so
    /// the comparison above tells them apart.
    @Test func theReleasesDisagreeOnSomeCases() throws {
        for (file, rules) in [
            ("beam_cases_4.31.json", BeamRules.transformers5), ("beam_cases_5.json", BeamRules.transformers431),
        ] {
            let fixture = try BeamCases.load(file)
            let differing = try fixture.cases.filter { scripted in
                let parameters = try Self.parameters(scripted.settings, rules: rules)
                return ScriptedModel(scripted: scripted, eos: fixture.eos).generate(parameters, bos: fixture.bos)
                    .tokens != scripted.ids
            }
            #expect(!differing.isEmpty, "\(file) under \(rules)")
        }
    }

    @Test func rulesAreWrittenOnlyForBeamSearch() throws {
        var greedy = GenerationParameters()
        greedy.beamRules = .transformers5
        let greedyJSON = String(decoding: try JSONEncoder().encode(greedy), as: UTF8.self)
        #expect(!greedyJSON.contains("beam_rules"))
        var beams = greedy
        beams.beamCount = 3
        let decoded = try JSONDecoder().decode(GenerationParameters.self, from: try JSONEncoder().encode(beams))
        #expect(decoded == beams)
        // Settings written before the key existed take the default, 4.31's rules.
        let old = try JSONDecoder().decode(GenerationParameters.self, from: Data(#"{"num_beams": 5}"#.utf8))
        #expect(old.beamRules == .transformers431)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(GenerationParameters.self, from: Data(#"{"beam_rules": "4.31"}"#.utf8))
        }
    }
}

@Suite struct EvaluationSettingsTests {
    /// Reference §8: the evaluation scripts' settings, with 4.31's lengths (which count the dummy BOS) as new tokens.
    @Test func thePresetHoldsTheScriptsSettings() {
        func settings(_ task: TaskKind, _ variant: ModelVariant) -> [Double] {
            let p = GenerationParameters.evaluation(task, variant: variant)
            return [Double(p.beamCount), Double(p.maxNewTokens), Double(p.minNewTokens), Double(p.lengthPenalty)]
        }
        #expect(settings(.vqa, .multitask) == [5, 10, 0, 0])
        #expect(settings(.ground, .multitask) == [5, 29, 0, 1])
        #expect(settings(.caption, .multitask) == [5, 29, 7, 1])
        #expect(settings(.chat, .multitask) == [5, 100, 0, 0])
        for task in [TaskKind.caption, .vqa, .ground] { #expect(settings(task, .chat) == [1, 128, 0, 1]) }
        #expect(settings(.chat, .chat) == [1, 1024, 0, 1])
        for task in TaskKind.allCases {
            for variant in [ModelVariant.multitask, .chat] {
                let parameters = DecodingPreset.evaluation.parameters(task, variant: variant)
                #expect(parameters.beamRules == .transformers431 && parameters.temperature == nil)
                #expect(throws: Never.self) { try parameters.validate() }
            }
        }
        #expect(DecodingPreset.greedy.parameters(.ground, variant: .multitask) == GenerationParameters())
    }

    /// Flags override a preset's values; a preset's minimum gives way to a smaller maximum.
    @Test func flagsOverrideThePreset() throws {
        let base = GenerationParameters.evaluation(.caption, variant: .multitask)
        let shorter = try GenerationParameters.overriding(base, maxNewTokens: 4)
        #expect(shorter.beamCount == 5 && shorter.maxNewTokens == 4 && shorter.minNewTokens == 4)
        let greedy = try GenerationParameters.overriding(base, beams: 1, lengthPenalty: 2)
        #expect(greedy.beamCount == 1 && greedy.lengthPenalty == 2 && greedy.maxNewTokens == 29)
        #expect(throws: GenerationError.self) { try GenerationParameters.overriding(base, minNewTokens: 40) }
        // A temperature asks for sampling: one beam, unless beams are given too (then, as in transformers, the
        // temperature does nothing).
        let sampled = try GenerationParameters.overriding(base, temperature: 0.7)
        #expect(sampled.beamCount == 1 && sampled.isSampling)
        #expect(try GenerationParameters.overriding(base, beams: 3, temperature: 0.7).isSampling == false)
    }
}
