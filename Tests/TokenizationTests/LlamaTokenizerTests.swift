// Special tokens written in text, as the slow Hugging Face LlamaTokenizer (legacy=False) handles them.

import Testing
import Tokenization

@Suite struct LlamaTokenizerTests {
    let tokenizer = LlamaTokenizer(TokenizerFixtures.tokenizer)

    @Test func specialTokensInTextMatchTheReference() {
        var mismatches: [String] = []
        for testCase in TokenizerFixtures.cases.special {
            let got = tokenizer.encode(testCase.text)
            if got != testCase.ids {
                mismatches.append("\(testCase.text.debugDescription): got \(got), want \(testCase.ids)")
            }
            let withBOS = tokenizer.encode(testCase.text, addBOS: true)
            if withBOS != testCase.ids_bos {
                mismatches.append("BOS \(testCase.text.debugDescription): got \(withBOS)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) differ; first: \(mismatches.prefix(4))")
    }

    @Test func plainTextMatchesSentencePiece() {
        for testCase in TokenizerFixtures.cases.encode.prefix(500)
        where !testCase.text.contains("<") && !testCase.text.contains("\u{2581}") {
            #expect(tokenizer.encode(testCase.text) == testCase.ids, "\(testCase.text.debugDescription)")
        }
    }

    @Test func promptsSplitAtTheImageMarkerMatchTheReference() {
        #expect(TokenizerFixtures.cases.chunks.count >= 8)
        for testCase in TokenizerFixtures.cases.chunks {
            let segments = tokenizer.encodeSegments(testCase.prompt, around: testCase.marker, addBOS: testCase.bos)
            #expect(segments == testCase.segments, "\(testCase.prompt.debugDescription)")
        }
    }
}
