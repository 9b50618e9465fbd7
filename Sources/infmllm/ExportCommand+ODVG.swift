// `export --format odvg`: a grounding job as the ODVG JSON lines that Grounding DINO trainers read
// (Open-GroundingDino's `odvg` datasets, MM-Grounding-DINO's `ODVGDataset`): a line per image file with its boxes,
// each region's phrase the expression it answers, found in the line's caption at `tokens_positive`.

import ArgumentParser
import Foundation
import ImageSources
import Postgres

extension ExportCommand {
    /// One line per image file with a box: `filename` (under `--relative-to`, or the path as stored), its `width` and
    /// `height`, and `grounding`: the `caption` of its expressions that have boxes, in task order, joined by ". ",
    /// and a region per box (`bbox` [x1, y1, x2, y2] in pixels, the `phrase`, and `tokens_positive`, the phrase's
    /// [start, end] in the caption in characters). Images with no box, URLs, archive members and files outside the
    /// folder are left out, with counts.
    func writeODVG(store: PostgresJobStore, job: Int64, kind: String, to sink: ExportSink) throws {
        guard kind == "ground" else {
            throw ValidationError("--format odvg writes boxes: job \(self.job) is a \(kind) job, not a grounding one")
        }
        var written = 0, boxless = 0, unnamed = 0
        try doneImages(store, job: job) { rows in
            let image = rows[0]
            guard case .file(let path)? = try? ImageLocation(image.image) else {
                unnamed += 1
                return
            }
            let filename = relativeTo == nil ? path : relativeFileName(image.image)
            guard let filename else {
                unnamed += 1
                return
            }
            guard let grounding = Self.odvgGrounding(rows) else {
                boxless += 1
                return
            }
            let line: [String: Any] = [
                "filename": filename, "width": image.width ?? 0, "height": image.height ?? 0, "grounding": grounding,
            ]
            try sink.write(try JSONOutput.string(line) + "\n")
            written += 1
        }
        var notes: [String] = []
        if boxless > 0 { notes.append("\(boxless) images without a box") }
        if unnamed > 0 {
            notes.append(
                "\(unnamed) images that are not files" + (relativeTo == nil ? "" : " under --relative-to"))
        }
        let note = notes.isEmpty ? "" : "; left out: " + notes.joined(separator: "; ")
        FileHandle.standardError.write(Data("wrote \(written) images' regions\(note)\n".utf8))
    }

    /// The `grounding` object of one image's done tasks, nil when none has a box. An expression asked twice (in two
    /// tasks) is in the caption once, with both tasks' boxes.
    static func odvgGrounding(_ rows: [ExportRow]) -> [String: Any]? {
        var caption = ""
        var spans: [String: [Int]] = [:]
        var regions: [[String: Any]] = []
        for row in rows {
            let boxes = row.boxes.filter { $0.count >= 4 }
            guard !boxes.isEmpty else { continue }
            if spans[row.input] == nil {
                if !caption.isEmpty { caption += ". " }
                let start = caption.unicodeScalars.count
                caption += row.input
                spans[row.input] = [start, caption.unicodeScalars.count]
            }
            for box in boxes {
                regions.append([
                    "bbox": Array(box[0..<4]), "phrase": row.input, "tokens_positive": [spans[row.input]!],
                ])
            }
        }
        return regions.isEmpty ? nil : ["caption": caption, "regions": regions]
    }
}
