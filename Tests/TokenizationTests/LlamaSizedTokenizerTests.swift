// The tokenizer at LLaMA's real size: a 32,000-piece SentencePiece BPE model trained with LLaMA's settings on
// a few tens of MB of real text, and the ids Python `sentencepiece` and Hugging Face's slow LlamaTokenizer
// (legacy=False) give with it, recorded by tools/reference/tokenizer32k_fixtures.py into Fixtures/llama32k.

import Foundation
import Testing
import Tokenization

struct LlamaSizedCases: Decodable {
    struct Corpus: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
    }

    struct Chat: Decodable {
        let text: String
        let ids: [Int]
        let segments: [[Int]]
    }

    let versions: [String: String]
    let vocab_size: Int
    let corpus: [Corpus]
    let chat: [Chat]
}

enum LlamaSizedFixtures {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/llama32k")
    static let modelPath = directory.appendingPathComponent("tokenizer.model").path

    static let cases: LlamaSizedCases = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("cases.json"))
        return try! JSONDecoder().decode(LlamaSizedCases.self, from: data)
    }()

    static let tokenizer: SentencePieceTokenizer = try! SentencePieceTokenizer(contentsOf: modelPath)
}

@Suite struct LlamaSizedTokenizerTests {
    let tokenizer = LlamaSizedFixtures.tokenizer
    let cases = LlamaSizedFixtures.cases

    @Test func hasLLaMAsVocabularySizeAndSettings() throws {
        #expect(tokenizer.vocabularySize == 32000)
        #expect(cases.vocab_size == 32000)
        let llama = try LlamaTokenizer(contentsOf: LlamaSizedFixtures.modelPath)
        #expect(llama.vocabularySize == 32000)
        #expect((llama.unknownID, llama.bosID, llama.eosID) == (0, 1, 2))
        let model = tokenizer.model
        #expect(model.modelType == .bpe && model.byteFallback)
        #expect(model.normalizerName == "identity" && model.addDummyPrefix && !model.removeExtraWhitespaces)
        #expect((model.unknownID, model.bosID, model.eosID, model.padID) == (0, 1, 2, -1))
        #expect((0..<3).map { tokenizer.piece(for: $0) } == ["<unk>", "<s>", "</s>"])
        #expect(tokenizer.id(forPiece: "<0x00>") == 3 && tokenizer.id(forPiece: "<0xFF>") == 258)
    }

    @Test func corpusIsLargeAndVaried() {
        #expect(cases.corpus.count >= 1500)
        #expect(cases.corpus.contains { $0.text.isEmpty })
        #expect(cases.corpus.contains { $0.text.contains("\n") })
        #expect(cases.corpus.contains { $0.text.unicodeScalars.contains { $0.value > 0xFFFF } })
        #expect(cases.corpus.contains { $0.text.unicodeScalars.contains { (0x4E00...0x9FFF).contains($0.value) } })
        #expect(cases.corpus.contains { $0.text.unicodeScalars.contains { (0x0400...0x04FF).contains($0.value) } })
        #expect(cases.chat.count == 6)
    }

    @Test func encodesEveryCorpusStringToTheReferenceIDs() {
        var mismatches: [String] = []
        for testCase in cases.corpus {
            let got = tokenizer.encode(testCase.text)
            if got != testCase.ids {
                mismatches.append("\(testCase.text.debugDescription): got \(got), want \(testCase.ids)")
            }
        }
        #expect(
            mismatches.isEmpty, "\(mismatches.count) of \(cases.corpus.count) differ; first: \(mismatches.prefix(5))")
    }

    @Test func decodesEveryCorpusEncodingAsTheReferenceDoes() {
        // Compared byte for byte: String's == would let canonically equivalent texts pass.
        let mismatches = cases.corpus.filter { !tokenizer.decode($0.ids).utf8.elementsEqual($0.decoded.utf8) }
        #expect(
            mismatches.isEmpty,
            "\(mismatches.count) differ: \(mismatches.prefix(5).map { ($0.text, tokenizer.decode($0.ids)) })")
    }

    @Test func chatPromptsMatchTheSlowHuggingFaceTokenizer() throws {
        let llama = try LlamaTokenizer(contentsOf: LlamaSizedFixtures.modelPath)
        for testCase in cases.chat {
            let got = llama.encode(testCase.text, addBOS: true)
            #expect(got == testCase.ids, "\(testCase.text.debugDescription): got \(got)")
            #expect(got.first == llama.bosID && got.contains(llama.eosID))
        }
    }

    @Test func chatPromptsSplitAtTheImageMarkerMatchTheReference() throws {
        let llama = try LlamaTokenizer(contentsOf: LlamaSizedFixtures.modelPath)
        for testCase in cases.chat {
            let segments = llama.encodeSegments(testCase.text, around: "<image>", addBOS: true)
            #expect(segments == testCase.segments, "\(testCase.text.debugDescription)")
        }
    }
}
