import NIOCore

/// A channel event as it enters the cluster: its frame for each channel, encoded once, and what the
/// `broadcast` payload for the other nodes (`scaling.md` §4.2) is built from: the same escaped tokens.
struct BroadcastEvent: Sendable {
    struct Target: Sendable {
        var channel: String
        var frame: OutboundFrame
    }

    /// What the bus payload is made of: the escaped tokens for an HTTP event, the frame itself for
    /// a client event.
    enum Source: Sendable {
        case http(name: ByteBuffer, data: ByteBuffer, batchOrder: Bool)
        case client(OutboundFrame)
    }

    /// One per distinct channel, in request order.
    var targets: [Target]
    /// The socket that must not receive it (the HTTP `socket_id`, or a whisper's sender).
    var exceptSocketID: String?
    var source: Source

    /// Writes the `payload` object of the bus message: `event`, `channels`, `data` for an HTTP
    /// event, `event`, `channel`, `data` for a batch item, the delivered frame for a client event.
    /// Only a node with peers calls it, so a single node never builds it.
    func writePayload(into buffer: inout ByteBuffer) {
        switch source {
        case .client(let frame):
            buffer.writeImmutableBuffer(frame.payload)
        case .http(let name, let data, let batchOrder):
            buffer.writeStaticString(#"{"event":"#)
            buffer.writeImmutableBuffer(name)
            if batchOrder, targets.count == 1 {
                buffer.writeStaticString(#","channel":"#)
                JSONWriter.writeString(targets[0].channel, into: &buffer)
            } else {
                buffer.writeStaticString(#","channels":["#)
                for (index, target) in targets.enumerated() {
                    if index > 0 { buffer.writeStaticString(",") }
                    JSONWriter.writeString(target.channel, into: &buffer)
                }
                buffer.writeStaticString("]")
            }
            buffer.writeStaticString(#","data":"#)
            buffer.writeImmutableBuffer(data)
            buffer.writeStaticString("}")
        }
    }

    /// Bytes `writePayload` adds, about.
    var payloadSizeEstimate: Int {
        switch source {
        case .client(let frame): return frame.bytes.readableBytes
        case .http(let name, let data, _): return name.readableBytes + data.readableBytes + 40 * targets.count + 40
        }
    }

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
        return BroadcastEvent(
            targets: targets, exceptSocketID: socketID,
            source: .http(name: nameToken, data: dataToken, batchOrder: batchOrder))
    }

    /// A client event (`protocol.md` §7.2): one channel, its frame also the bus payload.
    static func client(frame: OutboundFrame, channel: String, except socketID: String) -> BroadcastEvent {
        BroadcastEvent(
            targets: [Target(channel: channel, frame: frame)], exceptSocketID: socketID, source: .client(frame))
    }
}
