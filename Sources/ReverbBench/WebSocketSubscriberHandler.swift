import NIOCore
import Synchronization

/// A Pusher client reduced to what the bench needs: handshake, subscribe, answer pings, and for each
/// event frame read the send time out of its `data` and record the latency.
///
/// Works on raw bytes: frames are parsed in place from the read buffer, nothing is allocated per
/// received frame (a partial frame is kept in the read buffer until the rest arrives).
final class WebSocketSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking
        case connected
        case subscribed
        case closed
    }

    private let request: ByteBuffer
    private let subscribeFrame: ByteBuffer
    private let stats: DeliveryStats
    private let recorder: LoopLatencyRecorder
    private let ready: EventLoopPromise<Void>
    private var state = State.handshaking
    private var reads = ReadAccumulator()

    /// - Parameters:
    ///   - request: the HTTP upgrade request bytes.
    ///   - subscribeFrame: the masked `pusher:subscribe` frame.
    ///   - ready: succeeded on `subscription_succeeded`, failed if the connection ends before.
    init(
        request: ByteBuffer, subscribeFrame: ByteBuffer, stats: DeliveryStats, recorder: LoopLatencyRecorder,
        ready: EventLoopPromise<Void>
    ) {
        self.request = request
        self.subscribeFrame = subscribeFrame
        self.stats = stats
        self.recorder = recorder
        self.ready = ready
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.feed(unwrapInboundIn(data)) { process(context: context, buffer: &$0) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        recorder.publishDeliveries(to: stats)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .subscribed { stats.disconnected.add(1, ordering: .relaxed) }
        state = .closed
        ready.fail(BenchError("the server closed the connection before the subscription succeeded"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext, buffer: inout ByteBuffer) {
        if state == .handshaking {
            guard let end = buffer.readableBytesView.firstRange(of: [13, 10, 13, 10]) else { return }
            let headLength = end.upperBound - buffer.readerIndex
            let switching = buffer.withUnsafeReadableBytes { bytes in
                bytes.count >= 12 && UnsafeRawBufferPointer(rebasing: bytes[9..<12]).elementsEqual("101".utf8)
            }
            guard switching else {
                let line = buffer.readableBytesView.prefix { $0 != 13 }
                ready.fail(BenchError("WebSocket upgrade refused: \(String(decoding: line, as: UTF8.self))"))
                context.close(promise: nil)
                return
            }
            buffer.moveReaderIndex(forwardBy: headLength)
            state = .connected
        }
        let now = PayloadTimestamp.now()
        while buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            let first = buffer.getInteger(at: start, as: UInt8.self)!
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)!
            var length = Int(second & 0x7F)
            var headerLength = 2
            if length == 126 {
                guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(extended)
                headerLength = 4
            } else if length == 127 {
                guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return }
                length = Int(extended)
                headerLength = 10
            }
            if second & 0x80 != 0 { headerLength += 4 }
            guard buffer.readableBytes >= headerLength + length else { return }
            buffer.moveReaderIndex(forwardBy: headerLength)
            handleFrame(context: context, opcode: first & 0x0F, buffer: buffer, length: length, now: now)
            buffer.moveReaderIndex(forwardBy: length)
        }
    }

    private func handleFrame(
        context: ChannelHandlerContext, opcode: UInt8, buffer: ByteBuffer, length: Int, now: UInt64
    ) {
        switch opcode {
        case 0x1, 0x0:
            buffer.withUnsafeReadableBytes { all in
                let payload = UnsafeRawBufferPointer(rebasing: all[0..<length])
                if let decoded = PayloadTimestamp.decode(payload) {
                    recorder.unflushedDeliveries += 1
                    recorder.histogram.record(nanoseconds: now &- decoded.timestamp)
                } else if payload.containsBytes("pusher:ping") {
                    context.write(wrapOutboundOut(Self.pongFrame), promise: nil)
                } else if payload.containsBytes("connection_established") {
                    context.write(wrapOutboundOut(subscribeFrame), promise: nil)
                } else if payload.containsBytes("subscription_succeeded") {
                    if state == .connected {
                        state = .subscribed
                        stats.subscribed.add(1, ordering: .relaxed)
                        ready.succeed()
                    }
                } else if payload.containsBytes("pusher:error") {
                    stats.errors.add(1, ordering: .relaxed)
                }
            }
        case 0x8:
            context.close(promise: nil)
        case 0x9:
            var pong = context.channel.allocator.buffer(capacity: length + 6)
            Self.writeClientFrame(
                opcode: 0xA, payload: buffer.getSlice(at: buffer.readerIndex, length: length)!, into: &pong)
            context.write(wrapOutboundOut(pong), promise: nil)
        default:
            break
        }
    }

    private static let pongFrame: ByteBuffer = {
        var buffer = ByteBuffer()
        writeClientFrame(
            opcode: 0x1, payload: ByteBuffer(string: #"{"event":"pusher:pong","data":"{}"}"#), into: &buffer)
        return buffer
    }()

    /// Writes a final, masked client frame. The mask key is zero, which RFC 6455 allows (the key
    /// only has to be present), so the payload bytes go out unchanged.
    static func writeClientFrame(opcode: UInt8, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode)
        let length = payload.readableBytes
        if length < 126 {
            buffer.writeInteger(0x80 | UInt8(length))
        } else if length <= 65_535 {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeInteger(UInt32(0))
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    /// The upgrade request for `target` and `appKey`.
    static func upgradeRequest(target: BenchTarget, appKey: String) -> ByteBuffer {
        ByteBuffer(
            string: "GET \(target.prefix)/app/\(appKey)?protocol=7&client=reverb-bench&version=1.0 HTTP/1.1\r\n"
                + "Host: \(target.host):\(target.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: cmV2ZXJiLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    }

    /// The masked `pusher:subscribe` frame for a public `channel`.
    static func subscribeFrame(channel: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        writeClientFrame(
            opcode: 0x1,
            payload: ByteBuffer(string: #"{"event":"pusher:subscribe","data":{"auth":"","channel":"\#(channel)"}}"#),
            into: &buffer)
        return buffer
    }
}

@available(*, unavailable)
extension WebSocketSubscriberHandler: Sendable {}
