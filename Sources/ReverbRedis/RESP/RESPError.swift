/// The reply stream from Redis is not valid RESP2; the connection carrying it must be closed.
public struct RESPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parser's explanation (hiredis' `errstr`).
    public let message: String

    /// An error carrying the parser's explanation.
    public init(message: String) {
        self.message = message
    }

    public var description: String { "Invalid reply from Redis: \(message)" }
}
