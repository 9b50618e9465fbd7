// The images made by tools/reference/image_fixtures.py and what Pillow produced from each.

import Foundation

struct ImageCases: Decodable {
    struct Case: Decodable {
        let file: String
        let kind: String
        let pillow_mode: String
        let width: Int
        let height: Int
        let rgb_sha256: String
        let rgb: String?
        let stretched: String
        let squared: String
        let normalized: [Float]?
        /// The Exif orientation tag as Pillow reads it, and the pixels of `ImageOps.exif_transpose` (images with a tag).
        let orientation: Int?
        let displayed: String?
        let displayed_width: Int?
        let displayed_height: Int?
    }

    let pillow: String
    let size: Int
    let fill: [UInt8]
    let images: [Case]
}

enum ImageFixtures {
    static let directory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")

    static let cases: ImageCases = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("images.json"))
        return try! JSONDecoder().decode(ImageCases.self, from: data)
    }()

    static func path(_ file: String) -> String {
        directory.appendingPathComponent("images").appendingPathComponent(file).path
    }

    static func bytes(_ base64: String) -> [UInt8] {
        [UInt8](Data(base64Encoded: base64)!)
    }
}
