import Logging
import NIOCore
import NIOSSL

/// Encodes commands, decodes replies with hiredis, and pairs replies with commands in order.
///
/// On a subscribed connection `message` and `pmessage` pushes are peeled off before matching and
/// handed to `onMessage` on the event loop. A health-check `PING` goes out every `pingInterval`;
/// if the previous one is still unanswered the connection is closed (spec `scaling.md` §5.2).
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        enum Owner {
            case caller(EventLoopPromise<RESPValue>?)
            case healthCheck
        }
        var owner: Owner
        var remaining: Int
        var collected: [RESPValue] = []
    }

    private let reader = HiredisReader()
    private var pending = CircularBuffer<Pending>()
    private var isSubscribed = false
    private var isClosed = false
    private let closeReason: RedisCloseReason
    private var healthCheckOutstanding = false
    private var healthCheckTask: RepeatedTask?
    private let pingInterval: TimeAmount?
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    private let logger: Logger
    private let peer: String

    init(
        peer: String,
        closeReason: RedisCloseReason,
        pingInterval: TimeAmount?,
        logger: Logger,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    ) {
        self.peer = peer
        self.closeReason = closeReason
        self.pingInterval = pingInterval
        self.logger = logger
        self.onMessage = onMessage
    }

    func channelActive(context: ChannelHandlerContext) {
        if let pingInterval {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            healthCheckTask = context.eventLoop.scheduleRepeatedTask(initialDelay: pingInterval, delay: pingInterval) {
                _ in
                let (handler, context) = bound.value
                handler.checkHealth(context: context)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        healthCheckTask?.cancel()
        healthCheckTask = nil
        let closed = RedisConnectionError(.connectionClosed, "Redis at \(peer) closed the connection")
        closeReason.record(closed)
        let error = closeReason.error ?? closed
        while let entry = pending.popFirst() {
            if case .caller(let promise?) = entry.owner { promise.fail(error) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeReason.record(
            error is NIOSSLError
                ? RedisConnectionError(.connectFailed, "TLS with Redis at \(peer) failed: \(error)")
                : RedisConnectionError(.connectionClosed, "Connection to Redis at \(peer) failed: \(error)")
        )
        context.close(promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard !isClosed else {
            let error =
                closeReason.error ?? RedisConnectionError(.connectionClosed, "Connection to Redis at \(peer) is closed")
            request.promise?.fail(error)
            promise?.fail(error)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: request.estimatedSize)
        request.encode(into: &buffer)
        pending.append(Pending(owner: .caller(request.promise), remaining: max(1, request.expectedReplies)))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
            while let reply = try reader.nextReply() {
                handle(reply)
            }
        } catch {
            closeReason.record(
                RedisConnectionError(.protocolError, "Invalid reply from Redis at \(peer): \(error.message)")
            )
            logger.error("Invalid reply from Redis; closing the connection", metadata: ["error": "\(error.message)"])
            context.close(promise: nil)
        }
    }

    private func handle(_ reply: RESPValue) {
        if case .array(let elements?) = reply, let kind = elements.first?.string {
            switch kind {
            case "message" where isSubscribed && elements.count == 3:
                deliver(channel: elements[1], payload: elements[2])
                return
            case "pmessage" where isSubscribed && elements.count == 4:
                deliver(channel: elements[2], payload: elements[3])
                return
            case "subscribe", "psubscribe":
                isSubscribed = true
            case "unsubscribe", "punsubscribe":
                if case .integer(0) = elements.last { isSubscribed = false }
            default:
                break
            }
        }
        guard var entry = pending.popFirst() else {
            logger.debug("Unexpected reply from Redis", metadata: ["reply": "\(reply)"])
            return
        }
        if case .error = reply {
            complete(entry.owner, with: reply)
            return
        }
        entry.remaining -= 1
        entry.collected.append(reply)
        if entry.remaining > 0 {
            pending.prepend(entry)
        } else {
            complete(entry.owner, with: entry.collected.count == 1 ? reply : .array(entry.collected))
        }
    }

    private func complete(_ owner: Pending.Owner, with reply: RESPValue) {
        switch owner {
        case .caller(let promise?):
            promise.succeed(reply)
        case .caller(nil):
            if case .error(let text) = reply {
                logger.warning("Redis refused a command; message dropped", metadata: ["error": "\(text)"])
            }
        case .healthCheck:
            healthCheckOutstanding = false
        }
    }

    private func deliver(channel: RESPValue, payload: RESPValue) {
        guard let onMessage, case .bulkString(let bytes?) = payload else { return }
        onMessage(RedisPubSubMessage(channel: channel.string ?? "", payload: bytes))
    }

    private func checkHealth(context: ChannelHandlerContext) {
        guard !isClosed else { return }
        if healthCheckOutstanding {
            closeReason.record(
                RedisConnectionError(
                    .connectionClosed,
                    "Redis at \(peer) did not answer PING within \(pingInterval.map(Self.describe) ?? "the interval")"
                ))
            logger.warning("Redis did not answer PING; closing the connection")
            context.close(promise: nil)
            return
        }
        healthCheckOutstanding = true
        var buffer = context.channel.allocator.buffer(capacity: 14)
        RESPCommandEncoder.encode(["PING"], into: &buffer)
        pending.append(Pending(owner: .healthCheck, remaining: 1))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private static func describe(_ amount: TimeAmount) -> String {
        let milliseconds = amount.nanoseconds / 1_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}
