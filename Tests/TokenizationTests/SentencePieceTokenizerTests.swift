// Encoding and decoding agree id for id with Python `sentencepiece` on the recorded corpus.

import Testing
import Tokenization

@Suite struct SentencePieceTokenizerTests {
    let tokenizer = TokenizerFixtures.tokenizer
    let cases = TokenizerFixtures.cases

    @Test func readsLLaMAsSettingsFromTheModelFile() {
        let model = tokenizer.model
        #expect(model.pieces.count == 1400)
        #expect(model.modelType == .bpe && model.byteFallback)
        #expect(model.normalizerName == "identity" && model.addDummyPrefix && !model.removeExtraWhitespaces)
        #expect((model.unknownID, model.bosID, model.eosID, model.padID) == (0, 1, 2, -1))
        #expect(tokenizer.piece(for: 1) == "<s>" && tokenizer.id(forPiece: "<0x0A>") != nil)
    }

    @Test func corpusIsLargeAndVaried() {
        #expect(cases.encode.count >= 2000)
        #expect(cases.encode.contains { $0.text.isEmpty })
        #expect(cases.encode.contains { $0.text.unicodeScalars.contains { $0.value > 0xFFFF } })
    }

    @Test func encodesEveryCorpusStringToTheReferenceIDs() {
        var mismatches: [String] = []
        for testCase in cases.encode where tokenizer.encode(testCase.text) != testCase.ids {
            mismatches.append(
                "\(testCase.text.debugDescription): got \(tokenizer.encode(testCase.text)), want \(testCase.ids)")
        }
        #expect(
            mismatches.isEmpty, "\(mismatches.count) of \(cases.encode.count) differ; first: \(mismatches.prefix(5))")
    }

    @Test func decodesEveryCorpusEncodingAsTheReferenceDoes() {
        let mismatches = cases.encode.filter { tokenizer.decode($0.ids) != $0.decoded }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5).map { ($0.text, tokenizer.decode($0.ids)) })")
    }

    @Test func decodesArbitraryIDSequencesIncludingInvalidUTF8Bytes() {
        let mismatches = cases.decode.filter { tokenizer.decode($0.ids) != $0.text }
        #expect(
            mismatches.isEmpty,
            "\(mismatches.count) differ: \(mismatches.prefix(3).map { ($0.ids, $0.text, tokenizer.decode($0.ids)) })")
    }

    @Test func roundTripsTextWithoutTheEscapeCharacter() {
        for testCase in cases.encode where !testCase.text.contains("\u{2581}") {
            #expect(tokenizer.decode(tokenizer.encode(testCase.text)) == testCase.text)
        }
    }

    @Test func controlPiecesAppearOnlyWhenAsked() {
        let ids = [tokenizer.bosID] + tokenizer.encode("a cat") + [tokenizer.eosID]
        #expect(tokenizer.decode(ids) == "a cat")
        #expect(tokenizer.decode(ids, skipSpecialTokens: false) == "<s>a cat</s>")
    }
}
