// The CSV export: a line per task, or per box of a result with several, with fields quoted where they need it.

import Foundation
import Postgres
import Testing

@testable import infmllm

@Suite struct ExportCSVTests {
    static func row(_ id: Int, output: String?, boxes: [[Double]], status: String = "done") throws -> ExportRow {
        let object: [String: Any] = [
            "task_id": id, "image": "/images/\(id).jpg", "width": 640, "height": 480, "input": "the dog, left",
            "status": status, "output": output ?? NSNull(), "model": "tiny", "boxes": boxes, "error": NSNull(),
        ]
        return try JSONDecoder().decode(ExportRow.self, from: JSONSerialization.data(withJSONObject: object))
    }

    @Test func everyBoxHasALineAndATaskWithoutOneHasOne() throws {
        var rows = [
            try Self.row(
                1, output: "<ref>the dog</ref><box>(1,2),(3,4)</box><box>(5,6),(7,8)</box>",
                boxes: [[10, 20, 30, 40, 0.1, 0.2, 0.3, 0.4], [50, 60, 70, 80, 0.5, 0.6, 0.7, 0.8]]),
            try Self.row(2, output: "no box here", boxes: []),
            try Self.row(3, output: nil, boxes: [], status: "failed"),
        ]
        rows[0].confidence = 0.25
        rows[1].confidence = 0.25
        let lines = ExportCommand.csv(rows).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(
            lines[0] == "task_id,image,width,height,input,status,error,output,model,box,x1,y1,x2,y2,metadata,confidence"
        )
        let quoted = "\"the dog, left\""
        #expect(lines[1].hasPrefix("1,/images/1.jpg,640,480,\(quoted),done,,"))
        #expect(
            lines[1].hasSuffix(",tiny,0,10.0,20.0,30.0,40.0,,0.25")
                && lines[2].hasSuffix(",tiny,1,50.0,60.0,70.0,80.0,,0.25"))
        #expect(lines[3] == "2,/images/2.jpg,640,480,\(quoted),done,,no box here,tiny,,,,,,,0.25")
        #expect(lines[4] == "3,/images/3.jpg,640,480,\(quoted),failed,,,tiny,,,,,,,")
        #expect(lines.count == 6 && lines[5].isEmpty)
    }

    /// A manifest line's other fields come back as a JSON object: a quoted CSV field, and `metadata` in JSONL.
    @Test func metadataComesBackWithTheRow() throws {
        var row = try Self.row(4, output: "a cat", boxes: [])
        row.metadata = #"{"id":"sku-1","tags":["a","b"]}"#
        let line = ExportCommand.csv([row]).split(separator: "\n")[1]
        #expect(line.hasSuffix(#","{""id"":""sku-1"",""tags"":[""a"",""b""]}","#))
        let object =
            try JSONSerialization.jsonObject(with: Data(try ExportCommand.jsonLine(row).utf8)) as? [String: Any]
        #expect(
            (object?["metadata"] as? [String: Any])?["id"] as? String == "sku-1"
                && object?["output"] as? String == "a cat")
        row.metadata = nil
        #expect(try ExportCommand.jsonLine(row) == (try JSONOutput.encode(row)))
        // A field holding CRLF (one Character in Swift) is quoted like one holding LF.
        row.output = "two\r\nlines"
        #expect(ExportCommand.csv([row]).contains(",\"two\r\nlines\","))
    }
}
