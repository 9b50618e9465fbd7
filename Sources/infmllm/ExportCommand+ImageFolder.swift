// `export --format imagefolder`: the metadata.jsonl that Hugging Face `datasets` reads beside a folder of images
// (`load_dataset("imagefolder", data_dir=...)`, and diffusers' text-to-image training after it): a line per image
// file under --relative-to with its results, named by its path under that folder.

import Foundation
import Postgres

extension ExportCommand {
    /// One line per image file under `--relative-to` with a done task: `file_name` and, by the job's kind, `text`
    /// (a caption), `questions` and `answers` (VQA and chat, in task order), or `objects` (grounding: `bbox` as
    /// COCO's [x, y, width, height] in pixels of the image as `datasets` loads it, its Exif orientation applied, and
    /// the `expression` of each box). Other images (URLs, archive members, files outside the folder) are left out
    /// with a count, and so is a file that another URI of the job named already (a path and its `file://` URI).
    func writeImageFolder(store: PostgresJobStore, job: Int64, kind: String, to sink: ExportSink) throws {
        var written = 0, outside = 0, repeated = 0
        var names = NameSet()
        try doneImages(store, job: job) { rows in
            guard let name = relativeFileName(rows[0].image) else {
                outside += 1
                return
            }
            guard names.insert(name) else {
                repeated += 1
                return
            }
            try sink.write(try JSONOutput.string(Self.imageFolderLine(name, rows, kind: kind)) + "\n")
            written += 1
        }
        var notes: [String] = []
        if outside > 0 { notes.append("\(outside) images that are not files under --relative-to") }
        if repeated > 0 { notes.append("\(repeated) images whose file another URI of the job named already") }
        let note = notes.isEmpty ? "" : "; left out: " + notes.joined(separator: "; ")
        FileHandle.standardError.write(Data("wrote \(written) images' metadata\(note)\n".utf8))
    }

    /// The metadata line of the image named `name` (relative to the folder) whose done tasks are `rows`.
    static func imageFolderLine(_ name: String, _ rows: [ExportRow], kind: String) -> [String: Any] {
        var line: [String: Any] = ["file_name": name]
        switch kind {
        case "caption":
            line["text"] = rows.compactMap(\.output).first ?? ""
        case "ground":
            var boxes: [[Double]] = [], expressions: [String] = []
            for row in rows {
                for box in row.boxes where box.count >= 4 {
                    boxes.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
                    expressions.append(row.input)
                }
            }
            line["objects"] = ["bbox": boxes, "expression": expressions]
        default:
            line["questions"] = rows.map(\.input)
            line["answers"] = rows.map { $0.output ?? "" }
        }
        return line
    }
}
