import NIOCore

/// The native bus format (`scaling.md` §4.1–§4.2): one compact JSON object per Redis message.
enum ClusterEnvelope {
    static let version = 1

    /// `{"v":1,"type":TYPE,"node":NODE` — the caller appends its fields and the closing brace.
    static func begin(type: StaticString, node: String, capacity: Int = 128) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        buffer.writeStaticString(#"{"v":1,"type":""#)
        buffer.writeStaticString(type)
        buffer.writeStaticString(#"","node":"#)
        JSONWriter.writeString(node, into: &buffer)
        return buffer
    }

    /// Appends `,"name":"value"`.
    static func field(_ name: StaticString, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(",\"")
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":")
        JSONWriter.writeString(value, into: &buffer)
    }

    /// The one `broadcast` of an event, whatever its channel count; its tokens are copied in as
    /// they were escaped when the event entered the cluster.
    static func broadcast(node: String, app: String, event: BroadcastEvent) -> ByteBuffer {
        var buffer = begin(type: "broadcast", node: node, capacity: event.payloadSizeEstimate + 128)
        field("app", app, into: &buffer)
        if let socketID = event.exceptSocketID { field("socket_id", socketID, into: &buffer) }
        buffer.writeStaticString(#","payload":"#)
        event.writePayload(into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    static func terminateUser(node: String, app: String, userID: String) -> ByteBuffer {
        var buffer = begin(type: "terminate_user", node: node)
        field("app", app, into: &buffer)
        field("user_id", userID, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    static func query(node: String, app: String, id: String, request: ClusterQueryRequest) -> ByteBuffer {
        var buffer = begin(type: "query", node: node)
        field("app", app, into: &buffer)
        field("id", id, into: &buffer)
        switch request {
        case .connections:
            field("kind", "connections", into: &buffer)
        case .channels(let prefix, let names, let users):
            field("kind", "channels", into: &buffer)
            field("prefix", prefix, into: &buffer)
            buffer.writeStaticString(#","names":"#)
            JSONWriter.write(names.map { .array($0.map(JSONValue.string)) } ?? .null, into: &buffer)
            if users { buffer.writeStaticString(#","users":true"#) }
        }
        buffer.writeStaticString("}")
        return buffer
    }

    static func queryReply(node: String, app: String, id: String, to: String, result: JSONObject) -> ByteBuffer {
        var buffer = begin(type: "query_reply", node: node)
        field("app", app, into: &buffer)
        field("id", id, into: &buffer)
        field("to", to, into: &buffer)
        buffer.writeStaticString(#","result":"#)
        JSONWriter.write(.object(result), into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    static func heartbeat(node: String, host: String, pid: Int, startedAt: Int, version: String) -> ByteBuffer {
        var buffer = begin(type: "heartbeat", node: node)
        field("host", host, into: &buffer)
        buffer.writeString(#","pid":\#(pid),"started_at":\#(startedAt)"#)
        field("version", version, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    static func nodeLeave(node: String) -> ByteBuffer {
        var buffer = begin(type: "node_leave", node: node)
        buffer.writeStaticString("}")
        return buffer
    }

    /// `presence_join` / `presence_leave` (`scaling.md` §4.6), `user_join` / `user_leave` (ours,
    /// docs.md "Scaling"); `user_id` is the identity string.
    static func presence(node: String, app: String, announcement: PresenceAnnouncement) -> ByteBuffer {
        switch announcement {
        case .userJoin(let userID):
            var buffer = begin(type: "user_join", node: node, capacity: userID.utf8.count + 96)
            field("app", app, into: &buffer)
            field("user_id", userID, into: &buffer)
            buffer.writeStaticString("}")
            return buffer
        case .userLeave(let userID):
            var buffer = begin(type: "user_leave", node: node, capacity: userID.utf8.count + 96)
            field("app", app, into: &buffer)
            field("user_id", userID, into: &buffer)
            buffer.writeStaticString("}")
            return buffer
        case .join(let channel, let member):
            var buffer = begin(type: "presence_join", node: node, capacity: member.channelData.readableBytes * 2 + 160)
            field("app", app, into: &buffer)
            field("channel", channel, into: &buffer)
            field("user_id", member.identity, into: &buffer)
            buffer.writeStaticString(#","channel_data":"#)
            JSONWriter.writeString(bytesOf: member.channelData, into: &buffer)
            buffer.writeStaticString("}")
            return buffer
        case .leave(let channel, let userID):
            var buffer = begin(type: "presence_leave", node: node)
            field("app", app, into: &buffer)
            field("channel", channel, into: &buffer)
            field("user_id", PresenceMember.identity(of: userID) ?? "", into: &buffer)
            buffer.writeStaticString("}")
            return buffer
        }
    }

    /// `occupancy` (ours, docs.md "Scaling"): this node's subscriber counts of changed channels, 0
    /// for a channel it no longer has subscribers of.
    static func occupancy(node: String, app: String, counts: [(channel: String, count: Int)]) -> ByteBuffer {
        var buffer = begin(type: "occupancy", node: node, capacity: 96 + counts.count * 32)
        field("app", app, into: &buffer)
        buffer.writeStaticString(#","channels":{"#)
        writeCounts(counts, into: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `{"v":1,"type":"sync_request","node":N}`, `"to"` when asking one node.
    static func syncRequest(node: String, to: String?) -> ByteBuffer {
        var buffer = begin(type: "sync_request", node: node)
        if let to { field("to", to, into: &buffer) }
        buffer.writeStaticString("}")
        return buffer
    }

    /// `sync_state` for one app: this node's members per presence channel, creation order, and
    /// (ours) its subscriber counts and signed-in users; a receiver replaces what it attributes to
    /// this node in `app`.
    static func syncState(
        node: String, to: String?, app: String,
        state: (
            presence: [(channel: String, members: [PresenceMember])], counts: [(channel: String, count: Int)],
            users: [String]
        )
    ) -> ByteBuffer {
        var buffer = begin(type: "sync_state", node: node, capacity: 256)
        if let to { field("to", to, into: &buffer) }
        buffer.writeStaticString(#","presence":{"#)
        JSONWriter.writeString(app, into: &buffer)
        buffer.writeStaticString(":{")
        for (index, entry) in state.presence.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            JSONWriter.writeString(entry.channel, into: &buffer)
            buffer.writeStaticString(":[")
            for (position, member) in entry.members.enumerated() {
                if position > 0 { buffer.writeStaticString(",") }
                buffer.writeStaticString(#"{"user_id":"#)
                JSONWriter.writeString(member.identity, into: &buffer)
                buffer.writeStaticString(#","channel_data":"#)
                JSONWriter.writeString(bytesOf: member.channelData, into: &buffer)
                buffer.writeStaticString("}")
            }
            buffer.writeStaticString("]")
        }
        buffer.writeStaticString(#"}},"occupancy":{"#)
        JSONWriter.writeString(app, into: &buffer)
        buffer.writeStaticString(":{")
        writeCounts(state.counts, into: &buffer)
        buffer.writeStaticString(#"}},"users":{"#)
        JSONWriter.writeString(app, into: &buffer)
        buffer.writeStaticString(":[")
        for (index, userID) in state.users.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            JSONWriter.writeString(userID, into: &buffer)
        }
        buffer.writeStaticString("]}}")
        return buffer
    }

    private static func writeCounts(_ counts: [(channel: String, count: Int)], into buffer: inout ByteBuffer) {
        for (index, entry) in counts.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            JSONWriter.writeString(entry.channel, into: &buffer)
            buffer.writeString(":\(entry.count)")
        }
    }

    /// The frame for each channel of a `broadcast` payload (`scaling.md` §3.1): `channels` removed,
    /// `channel` set (appended last when absent), every other member copied byte for byte, its
    /// escaping untouched (`protocol.md` §0), so nothing is decoded and encoded again.
    /// - Parameters:
    ///   - message: the whole bus message.
    ///   - payload: where the payload object sits in `message`'s readable bytes.
    /// - Returns: nil when the payload is not an object with `channel` or `channels` strings.
    static func frames(in message: ByteBuffer, payload: Range<Int>) -> [(channel: String, frame: OutboundFrame)]? {
        let members: [JSONParser.RawMember]
        do {
            members = try message.withUnsafeReadableBytes { bytes throws(JSONParseError) in
                try JSONParser.members(UnsafeRawBufferPointer(rebasing: bytes[payload]))
            }
        } catch {
            return nil
        }
        let base = message.readerIndex + payload.lowerBound
        func slice(_ range: Range<Int>) -> ByteBuffer {
            message.getSlice(at: base + range.lowerBound, length: range.count)!
        }
        var channels: [String] = []
        if let list = members.first(where: { $0.key == "channels" }) {
            guard case .array(let names)? = try? JSONParser.parse(slice(list.valueRange).readableBytesView) else {
                return nil
            }
            for name in names {
                guard case .string(let channel) = name else { return nil }
                channels.append(channel)
            }
        } else if let single = members.first(where: { $0.key == "channel" }) {
            guard case .string(let channel)? = try? JSONParser.parse(slice(single.valueRange).readableBytesView) else {
                return nil
            }
            channels = [channel]
        } else {
            return nil
        }
        let kept = members.filter { $0.key != "channels" }
        let hasChannel = kept.contains { $0.key == "channel" }
        return channels.map { channel in
            let frame = OutboundFrame.build(capacity: payload.count + channel.utf8.count + 16) { buffer in
                buffer.writeStaticString("{")
                for (index, member) in kept.enumerated() {
                    if index > 0 { buffer.writeStaticString(",") }
                    buffer.writeImmutableBuffer(slice(member.keyRange))
                    buffer.writeStaticString(":")
                    if member.key == "channel" {
                        JSONWriter.writeString(channel, into: &buffer)
                    } else {
                        buffer.writeImmutableBuffer(slice(member.valueRange))
                    }
                }
                if !hasChannel {
                    if !kept.isEmpty { buffer.writeStaticString(",") }
                    buffer.writeStaticString(#""channel":"#)
                    JSONWriter.writeString(channel, into: &buffer)
                }
                buffer.writeStaticString("}")
            }
            return (channel, frame)
        }
    }
}

/// What a `query` asks of every node (`scaling.md` §4.4).
enum ClusterQueryRequest: Sendable, Equatable {
    case connections
    /// Occupied channels starting with `prefix`, restricted to `names` when given; with `users`,
    /// presence channels also list their distinct users.
    case channels(prefix: String, names: [String]?, users: Bool)

    init?(_ object: JSONObject) {
        switch object["kind"]?.stringValue {
        case "connections":
            self = .connections
        case "channels":
            let names = object["names"]?.arrayValue.map { $0.compactMap(\.stringValue) }
            let users: Bool
            if case .bool(true)? = object["users"] { users = true } else { users = false }
            self = .channels(prefix: object["prefix"]?.stringValue ?? "", names: names, users: users)
        default:
            return nil
        }
    }
}
