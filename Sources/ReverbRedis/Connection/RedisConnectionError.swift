/// Why a Redis connection could not be opened or a command failed.
public struct RedisConnectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that react differently to each case.
    public enum Kind: Sendable, Equatable {
        /// TCP, unix socket or TLS connection failed.
        case connectFailed
        /// Connecting and setting up took longer than the connect timeout.
        case connectTimeout
        /// `AUTH` was refused (`WRONGPASS`, `NOAUTH`, ...).
        case authenticationFailed
        /// `SELECT` was refused (`ERR DB index is out of range`).
        case selectFailed
        /// Redis answered a command with an error reply.
        case errorReply
        /// The connection closed before the reply arrived.
        case connectionClosed
        /// Redis sent bytes that are not RESP2.
        case protocolError
        /// The TLS files could not be loaded.
        case tlsConfiguration
        /// The server is not the primary the topology asks for (a replica named by a stale sentinel).
        case notPrimary
    }

    /// The category of failure.
    public let kind: Kind
    /// A human-readable explanation including Redis's own text where there is one.
    public let message: String

    /// An error of `kind` explained by `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
