// Beam search rules and decoding presets as command-line values.

import ArgumentParser
import Generation

extension BeamRules: ExpressibleByArgument {
    static let help = ArgumentHelp(
        "Whose beam search to reproduce: transformers-4.31 (the release the model was evaluated with; the default) or "
            + "transformers-5.",
        valueName: "rules")
}

extension DecodingPreset: ExpressibleByArgument {
    static let help = ArgumentHelp(
        "Settings to start from: greedy (30 new tokens at most; the default) or evaluation (what the released "
            + "evaluation scripts ran for the task and the model's variant: 5 beams for InfMLLM-7B). Flags given "
            + "beside it override its values.",
        valueName: "preset")
}
