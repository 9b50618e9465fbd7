// Beam search rules as a command-line value.

import ArgumentParser
import Generation

extension BeamRules: ExpressibleByArgument {
    static let help = ArgumentHelp(
        "Whose beam search to reproduce: transformers-4.31 (the release the model was evaluated with; the default) or "
            + "transformers-5.",
        valueName: "rules")
}
