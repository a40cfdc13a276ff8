public import NIOCore

/// One entry read from a Redis Stream written by `RedisPublisher` in stream mode.
public struct RedisStreamEntry: Sendable, Equatable {
    /// The entry id, `<milliseconds>-<sequence>`.
    public var id: RedisStreamID
    /// The publisher that appended it (`o`), empty when absent.
    public var origin: String
    /// The publisher's number for the message (`q`), 0 when absent.
    public var sequence: UInt64
    /// The message (`m`).
    public var payload: ByteBuffer

    public init(id: RedisStreamID, origin: String, sequence: UInt64, payload: ByteBuffer) {
        self.id = id
        self.origin = origin
        self.sequence = sequence
        self.payload = payload
    }

    /// The entry of one `XREAD`/`XRANGE` element, `[id, [field, value, …]]`; nil when malformed.
    init?(_ value: RESPValue) {
        guard case .array(let pair?) = value, pair.count == 2, let idText = pair[0].string,
            let id = RedisStreamID(idText), case .array(let fields?) = pair[1], fields.count % 2 == 0
        else { return nil }
        var origin = ""
        var sequence: UInt64 = 0
        var payload: ByteBuffer?
        for index in stride(from: 0, to: fields.count, by: 2) {
            guard case .bulkString(let value?) = fields[index + 1] else { continue }
            switch fields[index].string {
            case "o": origin = String(buffer: value)
            case "q": sequence = UInt64(String(buffer: value)) ?? 0
            case "m": payload = value
            default: break
            }
        }
        guard let payload else { return nil }
        self.init(id: id, origin: origin, sequence: sequence, payload: payload)
    }
}

/// A stream entry id, ordered as Redis orders them.
public struct RedisStreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public static let zero = RedisStreamID(milliseconds: 0, sequence: 0)

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `<ms>-<seq>` (or `<ms>`).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let milliseconds = UInt64(parts[0]) else { return nil }
        let sequence = parts.count == 2 ? UInt64(parts[1]) : 0
        guard let sequence else { return nil }
        self.init(milliseconds: milliseconds, sequence: sequence)
    }

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }
}
