// `export --format yolo`: a grounding job's boxes as YOLO label files, one per image (`<class> <x_center> <y_center>
// <width> <height>`, fractions of the image as viewers show it), named as `--format txt` names its files, and the
// classes in `classes.txt`: for training a detector on boxes the model found.

import ArgumentParser
import Foundation
import Postgres

extension ExportCommand {
    /// Label files under `directory` and `classes.txt` beside them: one class ("referred object"), or with
    /// `--categories expression` one per expression, numbered from 0 in the order met after those a `classes.txt`
    /// there already lists (label files that stay keep their meaning; `--overwrite` replaces label files, not the
    /// numbering). Images are oriented as viewers and training loaders (OpenCV, Pillow's `exif_transpose`) show them.
    func writeYOLO(store: PostgresJobStore, job: Int64, kind: String, to directory: String) throws {
        guard kind == "ground" else {
            throw ValidationError("--format yolo writes boxes: job \(self.job) is a \(kind) job, not a grounding one")
        }
        let list = URL(fileURLWithPath: directory).appendingPathComponent("classes.txt")
        var names: [String] = []
        if FileManager.default.fileExists(atPath: list.path) {
            guard let text = try? String(contentsOf: list, encoding: .utf8) else {
                throw ValidationError("cannot read \(list.path) (the classes its label files number): move it away")
            }
            // A line each (LF, CRLF or CR), blank ones kept: a class's number is its line's.
            names = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
            if names.last == "" { names.removeLast() }
        }
        var classes = Dictionary(names.enumerated().map { ($0.element, $0.offset) }) { first, _ in first }
        try writeTextFiles(store: store, job: job, to: directory, what: "label files", reserved: ["classes.txt"]) {
            row in
            let name = Self.className(categories == "expression" ? row.input : "referred object")
            let number: Int
            if let known = classes[name] {
                number = known
            } else {
                number = names.count
                classes[name] = number
                names.append(name)
            }
            return row.boxes.filter { $0.count == 8 }.map { Self.yoloLine(class: number, box: $0) }
        }
        if names.isEmpty { names = [Self.className("referred object")] }
        try Data((names.joined(separator: "\n") + "\n").utf8).write(to: list, options: .atomic)
        if let summary = try store.job(String(job)), summary.total > summary.counts["done", default: 0] {
            FileHandle.standardError.write(
                Data(
                    ("\(summary.total - summary.counts["done", default: 0]) task(s) are not done (queued, running, "
                        + "failed or cancelled): their images' label files lack their boxes, and an image without a "
                        + "done task has no label file, which trainers read as an image without objects\n").utf8))
        }
    }

    /// A class name as one line of `classes.txt`: line breaks become spaces.
    static func className(_ name: String) -> String {
        name.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// `class x_center y_center width height` from a box's fractions `[.., x1, y1, x2, y2]` (its last four).
    static func yoloLine(class number: Int, box: [Double]) -> String {
        let (x1, y1, x2, y2) = (box[4], box[5], box[6], box[7])
        let values = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1].map { String(format: "%.6f", $0) }
        return "\(number) " + values.joined(separator: " ")
    }
}
