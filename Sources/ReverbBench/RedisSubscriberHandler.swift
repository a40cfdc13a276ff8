import NIOCore
import Synchronization

/// A Redis pub/sub subscriber for the baseline: SUBSCRIBE, then for each `message` push read the
/// send time out of the payload, exactly as the WebSocket subscriber does.
final class RedisSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let subscribeCommand: ByteBuffer
    private let stats: DeliveryStats
    private let recorder: LoopLatencyRecorder
    private let ready: EventLoopPromise<Void>
    private var subscribed = false
    private var reads = ReadAccumulator()

    init(channel: String, stats: DeliveryStats, recorder: LoopLatencyRecorder, ready: EventLoopPromise<Void>) {
        var command = ByteBuffer()
        RESP.writeCommand(["SUBSCRIBE", channel], into: &command)
        self.subscribeCommand = command
        self.stats = stats
        self.recorder = recorder
        self.ready = ready
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(subscribeCommand), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.feed(unwrapInboundIn(data)) { process(context: context, buffer: &$0) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        recorder.publishDeliveries(to: stats)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if subscribed { stats.disconnected.add(1, ordering: .relaxed) }
        ready.fail(BenchError("redis-server closed the connection before SUBSCRIBE was confirmed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext, buffer: inout ByteBuffer) {
        let now = PayloadTimestamp.now()
        while let end = buffer.withUnsafeReadableBytes({ RESP.valueEnd($0, from: 0) }) {
            buffer.withUnsafeReadableBytes { all in
                let value = UnsafeRawBufferPointer(rebasing: all[0..<end])
                if let decoded = PayloadTimestamp.decode(value) {
                    recorder.unflushedDeliveries += 1
                    recorder.histogram.record(nanoseconds: now &- decoded.timestamp)
                } else if value.first == UInt8(ascii: "-") {
                    stats.errors.add(1, ordering: .relaxed)
                } else if !subscribed && value.containsBytes("subscribe") {
                    subscribed = true
                    stats.subscribed.add(1, ordering: .relaxed)
                    ready.succeed()
                }
            }
            buffer.moveReaderIndex(forwardBy: end)
        }
    }
}

@available(*, unavailable)
extension RedisSubscriberHandler: Sendable {}

/// The little of RESP2 the bench speaks: command encoding and finding where a reply ends.
enum RESP {
    /// Appends `*N\r\n` and `$len\r\narg\r\n` per argument.
    static func writeCommand(_ arguments: [String], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeString("\r\n")
        }
    }

    /// The offset just past the complete value starting at `start`, or nil when incomplete.
    static func valueEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let lineEnd = lineEnd(bytes, from: start + 1) else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"):
            return lineEnd
        case UInt8(ascii: "$"):
            guard let length = integer(bytes, from: start + 1, to: lineEnd - 2) else { return nil }
            if length < 0 { return lineEnd }
            let end = lineEnd + length + 2
            return end <= bytes.count ? end : nil
        case UInt8(ascii: "*"):
            guard let count = integer(bytes, from: start + 1, to: lineEnd - 2) else { return nil }
            var position = lineEnd
            if count > 0 {
                for _ in 0..<count {
                    guard let next = valueEnd(bytes, from: position) else { return nil }
                    position = next
                }
            }
            return position
        default:
            return nil
        }
    }

    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return index + 2 }
            index += 1
        }
        return nil
    }

    private static func integer(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        var index = start
        var negative = false
        if index < end && bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value = 0
        while index < end {
            let digit = Int(bytes[index]) - 48
            guard digit >= 0 && digit < 10 else { return nil }
            value = value * 10 + digit
            index += 1
        }
        return negative ? -value : value
    }
}
