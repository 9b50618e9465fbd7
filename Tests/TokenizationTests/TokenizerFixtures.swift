// The golden cases recorded from Python `sentencepiece` and Hugging Face's slow LlamaTokenizer by
// tools/reference/tokenizer_fixtures.py, with the tokenizer they were recorded for.

import Foundation
import Tokenization

struct TokenizerCases: Decodable {
    struct Encode: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
        let fast: [Int]
    }

    struct Special: Decodable {
        let text: String
        let ids: [Int]
        let ids_bos: [Int]
    }

    struct Decode: Decodable {
        let ids: [Int]
        let text: String
        let hf_skip_special: String
    }

    struct Chunks: Decodable {
        let prompt: String
        let marker: String
        let bos: Bool
        let segments: [[Int]]
    }

    let encode: [Encode]
    let chunks: [Chunks]
    let special: [Special]
    let decode: [Decode]
}

enum TokenizerFixtures {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let modelPath = directory.appendingPathComponent("tokenizer.model").path
    static let jsonPath = directory.appendingPathComponent("tokenizer.json").path

    static let cases: TokenizerCases = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("tokenizer_cases.json"))
        return try! JSONDecoder().decode(TokenizerCases.self, from: data)
    }()

    static let tokenizer: SentencePieceTokenizer = try! SentencePieceTokenizer(contentsOf: modelPath)
}
