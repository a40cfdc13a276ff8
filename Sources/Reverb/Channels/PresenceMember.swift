import NIOCore

/// A user's membership data in a presence channel (`protocol.md` §5.1), from a local connection or
/// from another node. Its storage is the `channel_data` string and the compact encoding of
/// `user_info`, both shared (copy on write) by every place that holds the member.
struct PresenceMember: Sendable, Equatable {
    /// The user identity: an integer id's decimal text, or the string id itself.
    var identity: String
    /// `user_id` with its original JSON type.
    var userID: JSONValue
    /// `user_info` encoded compactly (`null` when absent), as it goes into `hash`.
    var userInfo: ByteBuffer
    /// The `channel_data` string exactly as received, the `member_added` payload.
    var channelData: String

    /// Parses presence `channel_data`; `nil` when it lacks a valid `user_id` (4200).
    init?(channelData: String?) {
        guard let channelData, !channelData.isEmpty,
            case .object(let object)? = try? JSONParser.parse(channelData),
            let userID = object["user_id"], let identity = PresenceMember.identity(of: userID)
        else { return nil }
        self.identity = identity
        self.userID = userID
        var info = ByteBufferAllocator().buffer(capacity: 16)
        JSONWriter.write(object["user_info"] ?? .null, into: &info)
        self.userInfo = info
        self.channelData = channelData
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
    var size: Int { channelData.utf8.count + userInfo.readableBytes }
}
