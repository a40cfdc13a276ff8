import NIOCore

/// One event of a webhook body (`http-api.md` §8.1): `name`, `channel`, then the keys of its kind.
struct WebhookEvent: Sendable, Equatable {
    var type: Webhook.EventType
    var channel: String
    /// `user_id` (member events; `client_event` on presence channels): the identity string.
    var userID: String?
    /// `event` of a `client_event`.
    var event: String?
    /// `data` of a `client_event`: the delivered data as JSON text.
    var data: String?
    /// `socket_id` of a `client_event`: the sender's.
    var socketID: String?
    /// `subscription_count` of a `subscription_count` event.
    var subscriptionCount: Int?

    static func occupied(_ channel: String) -> WebhookEvent { WebhookEvent(type: .channelOccupied, channel: channel) }
    static func vacated(_ channel: String) -> WebhookEvent { WebhookEvent(type: .channelVacated, channel: channel) }
    static func cacheMiss(_ channel: String) -> WebhookEvent { WebhookEvent(type: .cacheMiss, channel: channel) }

    static func memberAdded(_ channel: String, userID: String) -> WebhookEvent {
        WebhookEvent(type: .memberAdded, channel: channel, userID: userID)
    }

    static func memberRemoved(_ channel: String, userID: String) -> WebhookEvent {
        WebhookEvent(type: .memberRemoved, channel: channel, userID: userID)
    }

    static func count(_ channel: String, _ count: Int) -> WebhookEvent {
        WebhookEvent(type: .subscriptionCount, channel: channel, subscriptionCount: count)
    }

    /// A whisper as the receivers got it: `data` is the delivered value as compact JSON text (a string
    /// value as it is, as Pusher passes the client's string on).
    static func clientEvent(
        channel: String, event: String, data: JSONValue, socketID: String, userID: String?
    ) -> WebhookEvent {
        let text: String
        if case .string(let string) = data { text = string } else { text = JSONWriter.string(data) }
        return WebhookEvent(
            type: .clientEvent, channel: channel, userID: userID, event: event, data: text, socketID: socketID)
    }

    func write(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"name":"#)
        JSONWriter.writeString(type.rawValue, into: &buffer)
        buffer.writeStaticString(#","channel":"#)
        JSONWriter.writeString(channel, into: &buffer)
        for (key, value) in [("event", event), ("data", data), ("socket_id", socketID), ("user_id", userID)] {
            guard let value else { continue }
            buffer.writeString(#",""# + key + #"":"#)
            JSONWriter.writeString(value, into: &buffer)
        }
        if let subscriptionCount {
            buffer.writeStaticString(#","subscription_count":"#)
            buffer.writeString(String(subscriptionCount))
        }
        buffer.writeStaticString("}")
    }

    /// The POST body: `{"time_ms":…,"events":[…]}`, compact.
    static func body(_ events: some Sequence<WebhookEvent>, timeMilliseconds: Int64) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        buffer.writeStaticString(#"{"time_ms":"#)
        buffer.writeString(String(timeMilliseconds))
        buffer.writeStaticString(#","events":["#)
        var first = true
        for event in events {
            if !first { buffer.writeStaticString(",") }
            first = false
            event.write(into: &buffer)
        }
        buffer.writeStaticString("]}")
        return buffer
    }

    /// `X-Pusher-Signature`: lowercase hex HMAC-SHA256 of the exact body, keyed with the app secret.
    static func signature(of body: ByteBuffer, secret: String) -> String {
        var key = secret
        return key.withUTF8 { keyBytes in
            body.withUnsafeReadableBytes { Signature.hmacSHA256Hex(key: UnsafeRawBufferPointer(keyBytes), message: $0) }
        }
    }
}
