// The same BPE read from Hugging Face's tokenizer.json encodes as the `tokenizers` library does.

import Foundation
import Testing
import Tokenization

@Suite struct HuggingFaceTokenizerTests {
    @Test func tokenizerJSONEncodesLikeTheTokenizersLibrary() throws {
        let model = try SentencePieceModel(huggingFaceTokenizerAt: TokenizerFixtures.jsonPath)
        let tokenizer = try SentencePieceTokenizer(model: model, path: TokenizerFixtures.jsonPath)
        #expect(tokenizer.vocabularySize == 1400)
        let mismatches = TokenizerFixtures.cases.encode.filter { tokenizer.encode($0.text) != $0.fast }
        #expect(mismatches.isEmpty, "\(mismatches.count) differ: \(mismatches.prefix(3).map(\.text))")
    }

    @Test func tokenizerJSONDecodesLikeTheModelFile() throws {
        let fromJSON = try SentencePieceTokenizer(
            model: SentencePieceModel(huggingFaceTokenizerAt: TokenizerFixtures.jsonPath))
        for testCase in TokenizerFixtures.cases.decode {
            #expect(fromJSON.decode(testCase.ids) == testCase.text)
        }
    }

    @Test(arguments: [
        ("{}", "not of type BPE"), ("[1]", "not a JSON object"),
        ("{\"model\":{\"type\":\"WordPiece\"}}", "not of type BPE"),
        ("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":\"NFKC\"}}", "NFKC"),
        ("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":5},\"merges\":[]}}", "vocabulary ids"),
    ])
    func unusableFilesAreRefusedWithTheReason(_ json: String, _ reason: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UUID().uuidString).json")
            .path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try SentencePieceModel(huggingFaceTokenizerAt: path) } throws: {
            "\($0)".contains(reason) && "\($0)".contains(path)
        }
    }
}
