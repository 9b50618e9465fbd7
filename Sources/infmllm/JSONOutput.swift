// One place that turns reporting output into stable, sorted JSON for `--json`.

import Foundation

enum JSONOutput {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// A JSON value built of dictionaries and arrays (`JSONSerialization`), in the same form: sorted keys, `/` as is.
    static func data(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func string(_ object: Any) throws -> String {
        String(decoding: try data(object), as: UTF8.self)
    }
}
