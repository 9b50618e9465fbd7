// `infmllm export JOB --format jsonl|csv|coco`: a job's results for other tools.

import ArgumentParser
import Foundation
import Postgres

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a job's results as JSONL, CSV or COCO (grounding boxes, or captions COCO-style).")

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "jsonl, csv or coco.") var format: String = "jsonl"
    @Option(help: ArgumentHelp("Write here instead of standard output.", valueName: "path")) var output: String?
    @OptionGroup var services: ServiceOptions

    func run() throws {
        let resolved = try JobServices(job, options: services)
        let rows = try resolved.store.exportRows(job: resolved.job.id)
        let text: String
        switch format {
        case "jsonl":
            text = try rows.map { try JSONOutput.encode($0) }.joined(separator: "\n") + (rows.isEmpty ? "" : "\n")
        case "csv": text = csv(rows)
        case "coco": text = try coco(rows, kind: resolved.job.taskKind)
        default: throw ValidationError("unknown format \(format): use jsonl, csv or coco")
        }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
    }

    private func csv(_ rows: [ExportRow]) -> String {
        func field(_ value: String?) -> String {
            guard let value else { return "" }
            return value.contains(where: { ",\"\n\r".contains($0) })
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
        var lines = ["task_id,image,width,height,input,status,error,output,model,x1,y1,x2,y2"]
        for row in rows {
            let box = row.boxes.first.map { $0.prefix(4).map { String($0) } } ?? ["", "", "", ""]
            lines.append(
                ([
                    String(row.taskID), field(row.image), row.width.map(String.init) ?? "",
                    row.height.map(String.init) ?? "",
                    field(row.input), row.status, field(row.error), field(row.output), field(row.model),
                ] + box).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// COCO: `images` once per file; for grounding, one annotation per box with bbox [x, y, w, h] in pixels and
    /// the expression; otherwise one caption annotation per result.
    private func coco(_ rows: [ExportRow], kind: String) throws -> String {
        var imageIDs: [String: Int] = [:]
        var images: [[String: Any]] = []
        var annotations: [[String: Any]] = []
        for row in rows where row.status == "done" {
            let imageID: Int
            if let existing = imageIDs[row.image] {
                imageID = existing
            } else {
                imageID = images.count + 1
                imageIDs[row.image] = imageID
                images.append([
                    "id": imageID, "file_name": row.image, "width": row.width ?? 0, "height": row.height ?? 0,
                ])
            }
            if kind == "ground" {
                for box in row.boxes where box.count >= 4 {
                    let width = box[2] - box[0], height = box[3] - box[1]
                    annotations.append([
                        "id": annotations.count + 1, "image_id": imageID, "category_id": 1,
                        "bbox": [box[0], box[1], width, height],
                        "area": width * height, "iscrowd": 0, "expression": row.input, "task_id": row.taskID,
                    ])
                }
            } else {
                annotations.append([
                    "id": annotations.count + 1, "image_id": imageID, "caption": row.output ?? "",
                    "task_id": row.taskID,
                ])
            }
        }
        var document: [String: Any] = ["images": images, "annotations": annotations]
        if kind == "ground" { document["categories"] = [["id": 1, "name": "referred object"]] }
        let data = try JSONSerialization.data(
            withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
