// Log lines in each format, with metadata, and without secrets.

import Logging
import Testing

@testable import Worker

@Suite struct LineLogHandlerTests {
    @Test func eachFormatCarriesTheLevelMessageAndMetadata() {
        let values = [("job", "3"), ("task", "12"), ("worker", "w 1")]
        #expect(LineLogHandler.line(.text, .info, "batch done", values) == #"batch done job=3 task=12 worker="w 1""#)
        let logfmt = LineLogHandler.line(.logfmt, .warning, #"say "hi""#, values)
        #expect(
            logfmt.hasPrefix("time=") && logfmt.hasSuffix(#"level=warning msg="say \"hi\"" job=3 task=12 worker="w 1""#)
        )
        let json = LineLogHandler.line(.json, .error, "x/y", values)
        #expect(
            json.contains(#""level":"error""#) && json.contains(#""message":"x/y""#) && json.contains(#""task":"12""#))
    }
}
