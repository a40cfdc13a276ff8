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
            switch WebSocketClientFrames.readHandshake(&buffer) {
            case .incomplete:
                return
            case .refused(let line):
                ready.fail(BenchError("WebSocket upgrade refused: \(line)"))
                context.close(promise: nil)
                return
            case .switched:
                state = .connected
            }
        }
        let now = PayloadTimestamp.now()
        WebSocketClientFrames.readFrames(&buffer) { opcode, payload, length in
            handleFrame(context: context, opcode: opcode, buffer: payload, length: length, now: now)
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
                    context.write(wrapOutboundOut(WebSocketClientFrames.pusherPong), promise: nil)
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
            let ping = buffer.getSlice(at: buffer.readerIndex, length: length)!
            context.write(wrapOutboundOut(WebSocketClientFrames.pong(answering: ping)), promise: nil)
        default:
            break
        }
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
        WebSocketClientFrames.textFrame(#"{"event":"pusher:subscribe","data":{"auth":"","channel":"\#(channel)"}}"#)
    }
}

@available(*, unavailable)
extension WebSocketSubscriberHandler: Sendable {}
