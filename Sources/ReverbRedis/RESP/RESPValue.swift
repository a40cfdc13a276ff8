public import NIOCore

/// One RESP2 reply, with every byte copied out of the parser.
///
/// hiredis reports a nil bulk string (`$-1`) and a nil array (`*-1`) alike, so both arrive as
/// `.bulkString(nil)`; `.array(nil)` exists for callers building values by hand.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `+OK` or `+PONG`.
    case simpleString(String)
    /// An error reply such as `-WRONGPASS invalid username-password pair`, without the `-`.
    case error(String)
    /// An integer reply (`:1`).
    case integer(Int64)
    /// A bulk string; `nil` for the nil reply.
    case bulkString(ByteBuffer?)
    /// A multi-bulk reply; `nil` for a nil array.
    case array([RESPValue]?)
}

extension RESPValue {
    /// The value as text when it is a simple or bulk string, decoded as UTF-8.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let buffer?): String(buffer: buffer)
        default: nil
        }
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulkString(nil), .array(nil): "(nil)"
        case .bulkString(let buffer?): "\"\(String(buffer: buffer))\""
        case .array(let elements?): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
