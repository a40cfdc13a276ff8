import NIOCore

/// A user's membership data in a presence channel (`protocol.md` §5.1), from a local connection or
/// from another node. Its storage is one buffer of the `channel_data` bytes; `user_info` is a slice
/// of it whenever the client sent it compact (Laravel's `json_encode` does), so a member costs about
/// its data size, and every place that holds the member shares that buffer.
struct PresenceMember: Sendable, Equatable {
    /// The user identity: an integer id's decimal text, or the string id itself.
    var identity: String
    /// `user_id` with its original JSON type.
    var userID: JSONValue
    /// `user_info` encoded compactly (`null` when absent), as it goes into `hash`.
    var userInfo: ByteBuffer
    /// The `channel_data` bytes exactly as received, the `member_added` payload.
    var channelData: ByteBuffer

    /// Parses presence `channel_data`; `nil` when it lacks a valid `user_id` (4200).
    init?(channelData text: String?) {
        guard let text, !text.isEmpty else { return nil }
        let channelData = ByteBuffer(string: text)
        guard case .object(let object)? = try? JSONParser.parse(channelData.readableBytesView),
            let userID = object["user_id"], let identity = PresenceMember.identity(of: userID)
        else { return nil }
        self.identity = identity
        self.userID = userID
        self.channelData = channelData
        self.userInfo = Self.compactUserInfo(object["user_info"] ?? .null, in: channelData)
    }

    /// `user_info` as it goes into `hash`: the slice of `channel_data` when that is already the
    /// compact encoding, else the compact encoding in a buffer of its own size.
    private static func compactUserInfo(_ value: JSONValue, in channelData: ByteBuffer) -> ByteBuffer {
        var compact = ByteBufferAllocator().buffer(capacity: channelData.readableBytes)
        JSONWriter.write(value, into: &compact)
        let raw = try? channelData.withUnsafeReadableBytes { bytes throws(JSONParseError) in
            try JSONParser.members(bytes).last { $0.key == "user_info" }?.valueRange
        }
        if let range = raw ?? nil, range.count == compact.readableBytes,
            let slice = channelData.getSlice(at: channelData.readerIndex + range.lowerBound, length: range.count),
            slice == compact
        {
            return slice
        }
        var exact = ByteBufferAllocator().buffer(capacity: compact.readableBytes)
        exact.writeImmutableBuffer(compact)
        return exact
    }

    /// A user identity per `protocol.md` §5.1: a non-empty string, or an integer as decimal text.
    static func identity(of userID: JSONValue) -> String? {
        switch userID {
        case .string(let s) where !s.isEmpty:
            return s
        case .number(let text):
            guard !text.contains("."), !text.contains("e"), !text.contains("E") else { return nil }
            if text == "-0" { return "0" }
            return text
        default:
            return nil
        }
    }

    /// Bytes this member holds, for the replicated-state caps.
    var size: Int { channelData.readableBytes }
}
