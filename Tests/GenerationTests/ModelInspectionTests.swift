// `model inspect` from the headers alone: parameter counts per network equal the configuration's, every fixture
// format is described, and a directory that fits no layout says which names are missing and left over.

import Foundation
import Models
import Testing

@Suite struct ModelInspectionTests {
    @Test(arguments: [("multitask", "multitask"), ("multitask-sharded", "multitask"), ("chat", "chat-1")])
    func everyFixtureIsDescribed(_ directory: String, _ layout: String) throws {
        let inspection = try ModelInspection(directory: EngineFixtures.modelDirectory(directory))
        #expect(inspection.layout == layout)
        #expect(inspection.configurationProblem == nil)
        #expect(inspection.parametersByNetwork.values.reduce(0, +) == inspection.parameters)
        #expect(inspection.files.map(\.tensors).reduce(0, +) == inspection.families.map(\.tensors).reduce(0, +))
        #expect(inspection.families.contains { $0.name.hasSuffix("blocks.*") })
        // The networks' parameters are what the configuration's shapes add up to.
        let configuration = try ModelConfiguration.load(directory: EngineFixtures.modelDirectory(directory))
        let candidate = layout == "multitask" ? CheckpointLayout.multitask : CheckpointLayout.chatCandidates[0]
        var expected: [String: Int] = [:]
        for (name, shape) in CheckpointWriter.tensorShapes(configuration, layout: candidate) {
            let network =
                name.hasPrefix(candidate.lnVision) || name.hasPrefix(candidate.pooler)
                ? "adapter" : name.hasPrefix(candidate.vision) ? "vision" : "language"
            expected[network, default: 0] += shape.reduce(1, *)
        }
        for network in ["vision", "adapter"] {
            #expect(inspection.parametersByNetwork[network] == expected[network], "\(network)")
        }
        // The language model may also hold buffers such as rotary frequencies, counted with it.
        #expect((inspection.parametersByNetwork["language"] ?? 0) >= expected["language"] ?? 0)
    }

    @Test func aDirectoryThatFitsNoLayoutSaysWhatIsMissingAndLeftOver() throws {
        let directory = try CheckpointErrorTests.checkpoint { tensors in
            tensors["vision_model.cls_token"] = tensors.removeValue(forKey: "visual_encoder.cls_token")
        }
        let inspection = try ModelInspection(directory: directory)
        #expect(inspection.layout == nil)
        let multitask = try #require(inspection.layouts.first { $0.layout == "multitask" })
        #expect(multitask.missing == ["visual_encoder.cls_token"])
        #expect(multitask.leftOver == ["vision_model.cls_token"])
        #expect(inspection.parametersByNetwork.keys.sorted() == ["other"])
    }
}
