// The name a model's tasks are routed by: the same for `enqueue --model` and the worker that serves the model.

/// Model keys: the last path component of a model as given (`/models/InfMLLM-7B` and `InfMLLM-7B` are one key).
public enum ModelKey {
    /// The routing key of `model`: its last path component, with characters other than letters, digits, `.`, `-`
    /// and `_` written as `_`, at most 200 bytes.
    public static func of(_ model: String) -> String {
        var path = Substring(model)
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        let last = path.split(separator: "/").last.map(String.init) ?? ""
        let key = String(
            last.unicodeScalars.map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || scalar.properties.numericType != nil
                        || "._-".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            }.prefix(200))
        return key.isEmpty || key == "." || key == ".." ? "_" : key
    }
}
