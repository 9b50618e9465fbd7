// `export --format yolo`: a grounding job's boxes as YOLO label files, one per image (`<class> <x_center> <y_center>
// <width> <height>`, fractions of the image as viewers show it), named as `--format txt` names its files, and the
// classes in `classes.txt`: for training a detector on boxes the model found.

import ArgumentParser
import Foundation
import Postgres

extension ExportCommand {
    /// Label files under `directory` and `classes.txt` beside them: one class ("referred object"), or with
    /// `--categories expression` one per expression, numbered from 0 in the order met after those a `classes.txt`
    /// there already lists (unless `--overwrite`). Images are oriented as viewers and training loaders (OpenCV,
    /// Pillow's `exif_transpose`) show them.
    func writeYOLO(store: PostgresJobStore, job: Int64, kind: String, to directory: String) throws {
        guard kind == "ground" else {
            throw ValidationError("--format yolo writes boxes: job \(self.job) is a \(kind) job, not a grounding one")
        }
        // Without --overwrite, label files that exist stay: the classes they number keep their numbers, and new
        // ones come after them.
        let list = URL(fileURLWithPath: directory).appendingPathComponent("classes.txt")
        var names =
            overwrite
            ? [] : ((try? String(contentsOf: list, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        var classes = Dictionary(names.enumerated().map { ($0.element, $0.offset) }) { first, _ in first }
        try writeTextFiles(store: store, job: job, to: directory, what: "label files", reserved: ["classes.txt"]) {
            row in
            let name = categories == "expression" ? row.input : "referred object"
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
        if names.isEmpty { names = ["referred object"] }
        let text = names.map { $0.split(whereSeparator: \.isNewline).joined(separator: " ") }.joined(separator: "\n")
        try Data((text + "\n").utf8).write(to: list, options: .atomic)
    }

    /// `class x_center y_center width height` from a box's fractions `[.., x1, y1, x2, y2]` (its last four).
    static func yoloLine(class number: Int, box: [Double]) -> String {
        let (x1, y1, x2, y2) = (box[4], box[5], box[6], box[7])
        let values = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1].map { String(format: "%.6f", $0) }
        return "\(number) " + values.joined(separator: " ")
    }
}
