/// Laravel's `env()` treatment of one variable, with swift-reverb's empty-means-unset rule (`config.md` §1).
enum EnvironmentValue {
    /// The value a variable gives its key, or `nil` when it is unset and the next source decides.
    ///
    /// `""` (also `""` or `''` in quotes) is unset; `(empty)` forces an empty string; `null`/`(null)` is
    /// JSON null; `true`/`(true)`/`false`/`(false)` are booleans, all case-insensitive; a value wrapped in
    /// matching quotes loses them.
    static func interpret(_ raw: String) -> JSONValue? {
        switch raw.lowercased() {
        case "true", "(true)": return .bool(true)
        case "false", "(false)": return .bool(false)
        case "null", "(null)": return .null
        case "(empty)": return .string("")
        default: break
        }
        var value = Substring(raw)
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            value = value.dropFirst().dropLast()
        }
        return value.isEmpty ? nil : .string(String(value))
    }
}
