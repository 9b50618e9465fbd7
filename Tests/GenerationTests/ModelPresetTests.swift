// The presets: valid configurations, and `7b` has exactly the released model's shapes.

import Models
import Testing

@Suite struct ModelPresetTests {
    @Test(arguments: ModelPreset.allCases)
    func everyPresetIsAValidConfiguration(_ preset: ModelPreset) throws {
        for variant in [ModelVariant.multitask, .chat] {
            try preset.configuration(variant: variant).validate(file: "preset \(preset.rawValue)")
        }
    }

    @Test func sevenBHasTheReleasedShapes() {
        let configuration = ModelPreset.sevenB.configuration(variant: .multitask)
        let shapes = CheckpointWriter.tensorShapes(configuration, layout: .multitask)
        func parameters(_ prefix: String) -> Int {
            shapes.filter { $0.0.hasPrefix(prefix) }.reduce(0) { $0 + $1.1.reduce(1, *) }
        }
        // Spec §1-§3: ViT-g at 448 px 987.0 M, pool-adapter 22,552,576, LLaMA-7B 6,738,415,616.
        #expect(parameters("visual_encoder.") == 1 * 1408 + 1025 * 1408 + 1408 * 3 * 14 * 14 + 1408 + 39 * 25_248_768)
        #expect((parameters("visual_encoder.") + 500_000) / 1_000_000 == 987)
        #expect(parameters("pooler.") == 22_552_576)
        #expect(parameters("lm_model.") == 6_738_415_616)
        #expect(configuration.visualTokenCount == 256 && configuration.gridSize == 32)
    }
}
