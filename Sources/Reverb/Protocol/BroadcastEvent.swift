import NIOCore

/// A channel event as it enters the cluster: its frame for each channel, encoded once, and the
/// `broadcast` payload for the other nodes (`scaling.md` §4.2), built from the same escaped tokens.
struct BroadcastEvent: Sendable {
    struct Target: Sendable {
        var channel: String
        var frame: OutboundFrame
    }

    /// One per distinct channel, in request order.
    var targets: [Target]
    /// The socket that must not receive it (the HTTP `socket_id`, or a whisper's sender).
    var exceptSocketID: String?
    /// The `payload` object of the bus message: `event`, `channels`, `data` for an HTTP event,
    /// `event`, `channel`, `data` for a batch item, the delivered frame for a client event.
    var payload: ByteBuffer

    /// An HTTP API event (`protocol.md` §6): `name` and `data` are escaped once, then copied into
    /// every channel's frame and into the bus payload.
    /// - Parameter batchOrder: a `batch_events` item, framed `event`, `channel`, `data`.
    static func http(
        name: String, data: String, channels: [String], except socketID: String?, batchOrder: Bool = false
    ) -> BroadcastEvent {
        var seen = Set<String>()
        let distinct = channels.filter { seen.insert($0).inserted }
        var nameToken = ByteBufferAllocator().buffer(capacity: name.utf8.count + 2)
        JSONWriter.writeString(name, into: &nameToken)
        var dataToken = ByteBufferAllocator().buffer(capacity: data.utf8.count + 16)
        JSONWriter.writeString(data, into: &dataToken)
        var targets: [Target] = []
        targets.reserveCapacity(distinct.count)
        for channel in distinct {
            let frame = OutboundFrame.build(
                capacity: nameToken.readableBytes + dataToken.readableBytes + channel.utf8.count + 40
            ) { buffer in
                buffer.writeStaticString(#"{"event":"#)
                buffer.writeImmutableBuffer(nameToken)
                if batchOrder {
                    buffer.writeStaticString(#","channel":"#)
                    JSONWriter.writeString(channel, into: &buffer)
                    buffer.writeStaticString(#","data":"#)
                    buffer.writeImmutableBuffer(dataToken)
                } else {
                    buffer.writeStaticString(#","data":"#)
                    buffer.writeImmutableBuffer(dataToken)
                    buffer.writeStaticString(#","channel":"#)
                    JSONWriter.writeString(channel, into: &buffer)
                }
                buffer.writeStaticString("}")
            }
            targets.append(Target(channel: channel, frame: frame))
        }
        var payload = ByteBufferAllocator().buffer(
            capacity: nameToken.readableBytes + dataToken.readableBytes + 32 * distinct.count + 40)
        payload.writeStaticString(#"{"event":"#)
        payload.writeImmutableBuffer(nameToken)
        if batchOrder, distinct.count == 1 {
            payload.writeStaticString(#","channel":"#)
            JSONWriter.writeString(distinct[0], into: &payload)
        } else {
            payload.writeStaticString(#","channels":["#)
            for (index, channel) in distinct.enumerated() {
                if index > 0 { payload.writeStaticString(",") }
                JSONWriter.writeString(channel, into: &payload)
            }
            payload.writeStaticString("]")
        }
        payload.writeStaticString(#","data":"#)
        payload.writeImmutableBuffer(dataToken)
        payload.writeStaticString("}")
        return BroadcastEvent(targets: targets, exceptSocketID: socketID, payload: payload)
    }

    /// A client event (`protocol.md` §7.2): one channel, its frame also the bus payload.
    static func client(frame: OutboundFrame, channel: String, except socketID: String) -> BroadcastEvent {
        BroadcastEvent(
            targets: [Target(channel: channel, frame: frame)], exceptSocketID: socketID, payload: frame.payload)
    }
}
