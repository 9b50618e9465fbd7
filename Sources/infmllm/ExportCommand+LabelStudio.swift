// `export --format label-studio`: a job's results as Label Studio tasks with pre-annotations ("predictions"), for
// people to review and correct: a grounding job's boxes as rectangle labels, one task per image with every
// expression's boxes; a caption job's captions as text; a VQA or chat job's answers, one task per question. Boxes are
// in percent of the image as browsers show it (its Exif orientation applied), as Label Studio draws them.

import ArgumentParser
import Foundation
import ImageSources
import Postgres

extension ExportCommand {
    /// The names the labeling config and the tasks share.
    enum LabelStudio {
        static let image = "image"
        static let boxes = "label"
        static let caption = "caption"
        static let answer = "answer"
    }

    /// Label Studio's JSON import: an array of tasks, written one image (grounding, captions) or one task (VQA,
    /// chat) at a time from rows that come by image. Only done tasks: an image whose grounding found no box still
    /// comes, without rectangles, for someone to draw them.
    func writeLabelStudio(store: PostgresJobStore, job: Int64, kind: String, to sink: ExportSink) throws {
        let byImage = kind == "ground" || kind == "caption"
        var tasks = 0, archived = 0, outsidePrefix = 0
        var labels: [String] = [], seenLabels: Set<String> = []
        func write(_ current: [ExportRow]) throws {
            let first = current[0]
            if (try? ImageLocation(first.image))?.archiveMember != nil { archived += 1 }
            if imagePrefix != nil && relativeFileName(first.image) == nil { outsidePrefix += 1 }
            var results: [[String: Any]] = []
            for row in current {
                if kind == "ground" {
                    let label = Self.labelName(categories == "expression" ? row.input : "referred object")
                    if seenLabels.insert(label).inserted { labels.append(label) }
                    results += Self.rectangles(row, label: label)
                } else if let output = row.output {
                    var result = Self.text(
                        output, name: kind == "caption" ? LabelStudio.caption : LabelStudio.answer,
                        id: "t\(row.taskID)")
                    if let confidence = row.confidence { result["score"] = confidence }
                    results.append(result)
                }
            }
            var data: [String: Any] = [
                LabelStudio.image: labelStudioImage(first.image), "image_uri": first.image,
                "task_ids": current.map(\.taskID),
            ]
            if kind != "ground" && kind != "caption" { data["question"] = first.input }
            if let metadata = first.metadata, let fields = try? JSONSerialization.jsonObject(with: Data(metadata.utf8))
            {
                data["metadata"] = fields
            }
            // The prediction's score is its least sure output's confidence: sorted by it, the doubtful come first.
            var prediction: [String: Any] = ["model_version": first.model ?? "", "result": results]
            if let score = current.compactMap(\.confidence).min() { prediction["score"] = score }
            let task: [String: Any] = ["data": data, "predictions": [prediction]]
            try sink.write((tasks > 0 ? ",\n" : "") + JSONOutput.string(task))
            tasks += 1
        }
        try sink.write("[")
        try doneImages(store, job: job) { rows in
            if byImage {
                try write(rows)
            } else {
                for row in rows { try write([row]) }
            }
        }
        try sink.write("]\n")
        if outsidePrefix > 0 {
            FileHandle.standardError.write(
                Data(
                    ("\(outsidePrefix) task(s) show images that are not files under --relative-to: their image is "
                        + "the URI as stored\n").utf8))
        }
        if archived > 0 {
            FileHandle.standardError.write(
                Data(
                    ("\(archived) task(s) show archive members, which Label Studio cannot open: their image is the "
                        + "member's URI\n").utf8))
        }
        if let labelConfig {
            try Self.labelConfig(kind: kind, labels: labels.isEmpty ? ["referred object"] : labels).write(
                toFile: labelConfig, atomically: true, encoding: .utf8)
        }
    }

    /// Where Label Studio finds an image: with `--image-prefix`, a file under `--relative-to` as the prefix and its
    /// relative path, percent-encoded (`/data/local-files/?d=` for Label Studio's local files); otherwise the URI as
    /// stored (an http(s) URL opens as it is).
    func labelStudioImage(_ uri: String) -> String {
        guard let imagePrefix, let relative = relativeFileName(uri) else { return uri }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")
        return imagePrefix + (relative.addingPercentEncoding(withAllowedCharacters: allowed) ?? relative)
    }

    /// A label as the labeling config can hold it: line breaks, tabs and other control characters (which an XML
    /// attribute turns into spaces, or cannot hold) become spaces, in the config and the predictions alike.
    static func labelName(_ text: String) -> String {
        String(
            String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// A row's boxes as rectangle labels: x, y, width and height in percent of the image's width and height.
    static func rectangles(_ row: ExportRow, label: String) -> [[String: Any]] {
        guard let width = row.width, let height = row.height, width > 0, height > 0 else { return [] }
        return row.boxes.enumerated().compactMap { ordinal, box -> [String: Any]? in
            guard box.count >= 4 else { return nil }
            let x = box[0] / Double(width) * 100, y = box[1] / Double(height) * 100
            var result: [String: Any] = [
                "id": "t\(row.taskID)-\(ordinal)", "type": "rectanglelabels", "from_name": LabelStudio.boxes,
                "to_name": LabelStudio.image, "original_width": width, "original_height": height,
                "image_rotation": 0,
                "value": [
                    "x": x, "y": y, "width": (box[2] - box[0]) / Double(width) * 100,
                    "height": (box[3] - box[1]) / Double(height) * 100, "rotation": 0, "rectanglelabels": [label],
                ] as [String: Any],
            ]
            if let confidence = row.confidence { result["score"] = confidence }
            return result
        }
    }

    /// A text result (a caption or an answer).
    static func text(_ text: String, name: String, id: String) -> [String: Any] {
        [
            "id": id, "type": "textarea", "from_name": name, "to_name": LabelStudio.image,
            "value": ["text": [text]],
        ]
    }

    /// The labeling config the tasks fit: an image, and rectangle labels (one per label), a caption or an answer
    /// to a question.
    static func labelConfig(kind: String, labels: [String]) -> String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
                .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        let image = "  <Image name=\"\(LabelStudio.image)\" value=\"$\(LabelStudio.image)\"/>\n"
        switch kind {
        case "ground":
            let choices = labels.map { "    <Label value=\"\(escaped($0))\"/>\n" }.joined()
            return "<View>\n" + image
                + "  <RectangleLabels name=\"\(LabelStudio.boxes)\" toName=\"\(LabelStudio.image)\">\n" + choices
                + "  </RectangleLabels>\n</View>\n"
        case "caption":
            return "<View>\n" + image
                + "  <TextArea name=\"\(LabelStudio.caption)\" toName=\"\(LabelStudio.image)\" editable=\"true\"/>\n"
                + "</View>\n"
        default:
            return "<View>\n" + image + "  <Header value=\"$question\"/>\n"
                + "  <TextArea name=\"\(LabelStudio.answer)\" toName=\"\(LabelStudio.image)\" editable=\"true\"/>\n"
                + "</View>\n"
        }
    }
}
