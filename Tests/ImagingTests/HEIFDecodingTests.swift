// HEIC and AVIF files decode to the pixels independent readers give (pillow-heif's own libheif and libde265 for HEIC,
// Pillow's libavif for AVIF; tools/reference/heif_fixtures.py) within a stated bound: HEVC and AV1 decode exactly by
// their standards, and what is left is each reader's YUV-to-RGB conversion and chroma upsampling. HEIC and AVIF
// without subsampled chroma agree within one level; a 4:2:0 AVIF differs at colour edges, where Pillow's libavif
// interpolates the chroma between samples and Debian's libheif 1.15 repeats each sample (it has no other way).

import Foundation
import Imaging
import Testing

@Suite struct HEIFDecodingTests {
    struct Case: Decodable {
        let file: String
        let kind: String
        let width: Int
        let height: Int
    }

    struct Cases: Decodable {
        let cases: [Case]
    }

    static let directory = ImageFixtures.directory.appendingPathComponent("heif")
    static let cases: [Case] = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("heif.json"))
        return try! JSONDecoder().decode(Cases.self, from: data).cases
    }()

    /// The largest difference of a channel from the reference, and the mean over all channels, that a fixture's
    /// decoding may show: one level where the conversions agree, more where the chroma is upsampled otherwise (the
    /// fixtures' saturated shapes on a gradient are the worst case: up to 79 levels at an edge, 4-6 on average).
    static func bound(_ kind: String) -> (worst: Int, mean: Double) {
        kind.hasPrefix("avif") && !kind.contains("4:4:4") ? (96, 8) : (1, 0.25)
    }

    @Test(arguments: cases.map(\.file))
    func pixelsAgreeWithTheReferenceWithinTheBound(_ file: String) throws {
        let testCase = try #require(Self.cases.first { $0.file == file })
        let path = Self.directory.appendingPathComponent(file).path
        let image = try ImageDecoder().decode(contentsOf: path)
        #expect(image.width == testCase.width && image.height == testCase.height)
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".rgb")))
        #expect(image.pixels.count == expected.count)
        let differences = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }
        let worst = differences.max() ?? 0
        let mean = Double(differences.reduce(0, +)) / Double(max(1, differences.count))
        let bound = Self.bound(testCase.kind)
        #expect(
            worst <= bound.worst && mean <= bound.mean, "\(testCase.kind): \(worst) levels at worst, \(mean) on average"
        )
        let header = try #require(ImageDecoder.header(of: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))))
        #expect(header.width == testCase.width && header.height == testCase.height && header.orientation == nil)
    }
}
