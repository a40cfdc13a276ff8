import NIOCore

/// The frames the server sends, byte for byte as `protocol.md` shows them.
enum PusherFrames {
    static let pong = OutboundFrame.build { $0.writeStaticString(#"{"event":"pusher:pong"}"#) }
    static let ping = OutboundFrame.build { $0.writeStaticString(#"{"event":"pusher:ping"}"#) }

    /// `{"event":"pusher:connection_established","data":"{\"socket_id\":\"…\",\"activity_timeout\":30}"}`
    static func connectionEstablished(socketID: String, activityTimeout: Int) -> OutboundFrame {
        OutboundFrame.build { buffer in
            buffer.writeStaticString(#"{"event":"pusher:connection_established","data":"{\"socket_id\":\""#)
            buffer.writeString(socketID)
            buffer.writeStaticString(#"\",\"activity_timeout\":"#)
            buffer.writeString(String(activityTimeout))
            buffer.writeStaticString(#"}"}"#)
        }
    }

    /// `{"event":"pusher:error","data":"{\"code\":4200,\"message\":\"…\"}"}`
    static func error(_ error: PusherError) -> OutboundFrame {
        OutboundFrame.build { buffer in
            var inner = ByteBufferAllocator().buffer(capacity: 64)
            inner.writeStaticString(#"{"code":"#)
            inner.writeString(String(error.code))
            inner.writeStaticString(#","message":"#)
            JSONWriter.writeString(error.message, into: &inner)
            inner.writeStaticString("}")
            buffer.writeStaticString(#"{"event":"pusher:error","data":"#)
            JSONWriter.writeString(bytesOf: inner, into: &buffer)
            buffer.writeStaticString("}")
        }
    }

    /// `{"event":EVENT,"data":"<data JSON as a string>","channel":CHANNEL}` for `pusher_internal:*` events.
    static func internalEvent(_ event: StaticString, channel: String, data: ByteBuffer) -> OutboundFrame {
        OutboundFrame.build(capacity: data.readableBytes + channel.utf8.count + 64) { buffer in
            buffer.writeStaticString(#"{"event":""#)
            buffer.writeStaticString(event)
            buffer.writeStaticString(#"","data":"#)
            JSONWriter.writeString(bytesOf: data, into: &buffer)
            buffer.writeStaticString(#","channel":"#)
            JSONWriter.writeString(channel, into: &buffer)
            buffer.writeStaticString("}")
        }
    }

    static func subscriptionSucceeded(channel: String, data: ByteBuffer) -> OutboundFrame {
        internalEvent("pusher_internal:subscription_succeeded", channel: channel, data: data)
    }

    /// `member_added` carries the joiner's `channel_data` string exactly as received.
    static func memberAdded(channel: String, channelData: ByteBuffer) -> OutboundFrame {
        internalEvent("pusher_internal:member_added", channel: channel, data: channelData)
    }

    static func memberRemoved(channel: String, userID: JSONValue) -> OutboundFrame {
        var data = ByteBufferAllocator().buffer(capacity: 32)
        data.writeStaticString(#"{"user_id":"#)
        JSONWriter.write(userID, into: &data)
        data.writeStaticString("}")
        return internalEvent("pusher_internal:member_removed", channel: channel, data: data)
    }

    /// `{"event":"pusher_internal:subscription_count","data":"{\"subscription_count\":N}","channel":CHANNEL}`
    static func subscriptionCount(channel: String, count: Int) -> OutboundFrame {
        internalEvent(
            "pusher_internal:subscription_count", channel: channel,
            data: ByteBuffer(string: #"{"subscription_count":\#(count)}"#))
    }

    /// `{"event":"pusher:signin_success","data":"{\"user_data\":\"…\"}"}`: `user_data` is the string
    /// as received, so it is encoded twice (`protocol.md` §13.1 step 5).
    static func signInSuccess(userData: String) -> OutboundFrame {
        var inner = ByteBufferAllocator().buffer(capacity: userData.utf8.count + 32)
        inner.writeStaticString(#"{"user_data":"#)
        JSONWriter.writeString(userData, into: &inner)
        inner.writeStaticString("}")
        return OutboundFrame.build(capacity: inner.readableBytes * 2 + 48) { buffer in
            buffer.writeStaticString(#"{"event":"pusher:signin_success","data":"#)
            JSONWriter.writeString(bytesOf: inner, into: &buffer)
            buffer.writeStaticString("}")
        }
    }

    /// `{"event":"pusher_internal:watchlist_events","data":"{\"events\":[…]}"}` (`protocol.md` §13.4):
    /// `offline` then `online`, each only when it lists an id.
    static func watchlistEvents(offline: [String], online: [String]) -> OutboundFrame {
        var inner = ByteBufferAllocator().buffer(capacity: 64 + (offline + online).reduce(0) { $0 + $1.utf8.count + 3 })
        inner.writeStaticString(#"{"events":["#)
        var first = true
        for (name, ids) in [("offline", offline), ("online", online)] where !ids.isEmpty {
            if !first { inner.writeStaticString(",") }
            first = false
            inner.writeStaticString(#"{"name":""#)
            inner.writeString(name)
            inner.writeStaticString(#"","user_ids":["#)
            for (index, id) in ids.enumerated() {
                if index > 0 { inner.writeStaticString(",") }
                JSONWriter.writeString(id, into: &inner)
            }
            inner.writeStaticString("]}")
        }
        inner.writeStaticString("]}")
        return OutboundFrame.build(capacity: inner.readableBytes * 2 + 64) { buffer in
            buffer.writeStaticString(#"{"event":"pusher_internal:watchlist_events","data":"#)
            JSONWriter.writeString(bytesOf: inner, into: &buffer)
            buffer.writeStaticString("}")
        }
    }

    /// `{"event":"pusher:cache_miss","channel":CHANNEL}`
    static func cacheMiss(channel: String) -> OutboundFrame {
        OutboundFrame.build { buffer in
            buffer.writeStaticString(#"{"event":"pusher:cache_miss","channel":"#)
            JSONWriter.writeString(channel, into: &buffer)
            buffer.writeStaticString("}")
        }
    }

    /// An HTTP API event: `{"event":E,"data":D,"channel":C}`, or `{"event":E,"channel":C,"data":D}` for a
    /// batch item (`protocol.md` §6).
    static func channelEvent(name: String, channel: String, data: String, batchOrder: Bool = false) -> OutboundFrame {
        OutboundFrame.build(capacity: name.utf8.count + channel.utf8.count + data.utf8.count + 48) { buffer in
            buffer.writeStaticString(#"{"event":"#)
            JSONWriter.writeString(name, into: &buffer)
            if batchOrder {
                buffer.writeStaticString(#","channel":"#)
                JSONWriter.writeString(channel, into: &buffer)
                buffer.writeStaticString(#","data":"#)
                JSONWriter.writeString(data, into: &buffer)
            } else {
                buffer.writeStaticString(#","data":"#)
                JSONWriter.writeString(data, into: &buffer)
                buffer.writeStaticString(#","channel":"#)
                JSONWriter.writeString(channel, into: &buffer)
            }
            buffer.writeStaticString("}")
        }
    }

    /// A whisper as delivered: `event`, `channel`, `data` (JSON, not a string), then `user_id` when known.
    static func clientEvent(name: String, channel: String, data: JSONValue, userID: JSONValue?) -> OutboundFrame {
        OutboundFrame.build(capacity: 128) { buffer in
            buffer.writeStaticString(#"{"event":"#)
            JSONWriter.writeString(name, into: &buffer)
            buffer.writeStaticString(#","channel":"#)
            JSONWriter.writeString(channel, into: &buffer)
            buffer.writeStaticString(#","data":"#)
            JSONWriter.write(data, into: &buffer)
            if let userID {
                buffer.writeStaticString(#","user_id":"#)
                JSONWriter.write(userID, into: &buffer)
            }
            buffer.writeStaticString("}")
        }
    }
}
