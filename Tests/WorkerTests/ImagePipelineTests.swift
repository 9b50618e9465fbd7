// The worker's image pipeline reads an image's Exif orientation with it, for the task's row, and leaves the pixels the
// model sees as stored.

import Foundation
import ImageSources
import Imaging
import TestSupport
import Testing

@testable import Worker

@Suite struct ImagePipelineTests {
    @Test func anImageComesWithItsExifOrientation() throws {
        let images = RepositoryFiles.path("Tests/ImagingTests/Fixtures/images")
        let pipeline = ImagePipeline(
            reader: ImageReader(), decoder: ImageDecoder(),
            preprocessor: ImagePreprocessor(size: 32, expandToSquare: false),
            concurrency: 2, memory: ImageMemory(capacity: 1 << 30))
        let turned = pipeline.read(images + "/exif_6_7x4.jpg")
        let plain = pipeline.read(images + "/rgb_64x64.jpg")
        var finished: [Int: ImagePipeline.Image] = [:]
        while finished.count < 2 {
            #expect(pipeline.waitForFinished(timeout: 60))
            for done in pipeline.takeFinished() { finished[done.ticket] = try done.image.get() }
        }
        let image = try #require(finished[turned])
        #expect(image.orientation == 6 && image.width == 7 && image.height == 4, "stored size, the tag beside it")
        #expect(finished[plain]?.orientation == 1, "an image without a tag is upright")
    }
}
