/// Why a `.env` file could not be read, with the 1-based line where the offending entry starts.
public struct DotEnvSyntaxError: Error, Sendable, Equatable {
    /// Line of the entry (its first line, for a multi-line value).
    public var line: Int
    /// What is wrong, without a trailing full stop: `unexpected whitespace in value`.
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    /// The message as printed at startup: `.env:7: unexpected whitespace in value.`
    public func message(fileName: String) -> String {
        "\(fileName):\(line): \(reason)."
    }
}
