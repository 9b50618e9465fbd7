// Broken tokenizer.model files give a typed error naming the file; random damage never crashes or hangs.

import Foundation
import TestSupport
import Testing
import Tokenization

@Suite struct MalformedModelTests {
    static let good = try! [UInt8](Data(contentsOf: URL(fileURLWithPath: TokenizerFixtures.modelPath)))

    @Test func missingFileIsNamed() {
        #expect { try SentencePieceTokenizer(contentsOf: "/no/such/tokenizer.model") } throws: {
            "\($0)".contains("/no/such/tokenizer.model")
        }
    }

    @Test(arguments: [0, 1, 7, 100, 10_000])
    func truncatedFilesAreMalformed(_ length: Int) {
        #expect { try SentencePieceModel(bytes: Array(Self.good.prefix(length)), path: "cut.model") } throws: { error in
            guard case .malformed(let path, _) = error as? TokenizerError else { return false }
            return path == "cut.model"
        }
    }

    @Test func aUnigramModelIsRefusedAsUnsupported() throws {
        var model = try SentencePieceModel(bytes: Self.good)
        model.modelType = .unigram
        #expect { try SentencePieceTokenizer(model: model, path: "uni.model") } throws: { "\($0)".contains("BPE") }
    }

    @Test func randomDamageNeverCrashes() {
        var generator = SplitMix64(seed: 42)
        let deadline = ContinuousClock.now + .seconds(3)
        var runs = 0
        while ContinuousClock.now < deadline {
            var bytes = Self.good
            for _ in 0..<Int(generator.next() % 16 + 1) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            if let model = try? SentencePieceModel(bytes: bytes),
                let tokenizer = try? SentencePieceTokenizer(model: model)
            {
                let ids = tokenizer.encode("A cat 🐈 on a window sill, 2026.")
                _ = tokenizer.decode(ids + [Int(generator.next() % 5000)])
            }
            runs += 1
        }
        #expect(runs > 50)
    }
}
