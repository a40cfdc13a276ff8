import Logging
import NIOCore
import NIOSSL

/// Encodes commands, decodes replies with hiredis, and carries out what its `StateMachine` decides:
/// pairing replies with commands in order, peeling `message`, `pmessage` and `smessage` pushes off a
/// subscribed connection for `onMessage` (and unasked `sunsubscribe` pushes for `onShardUnsubscribed`), and the health-check `PING` every `pingInterval` (spec `scaling.md` §5.2).
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private let reader = HiredisReader()
    private var stateMachine: StateMachine<EventLoopPromise<RESPValue>>
    private let closeReason: RedisCloseReason
    private var healthCheckTask: RepeatedTask?
    private let pingInterval: TimeAmount?
    private let onMessage: (@Sendable (RedisPubSubMessage) -> Void)?
    private let onShardUnsubscribed: (@Sendable (String) -> Void)?
    private let logger: Logger
    private let peer: String

    init(
        peer: String,
        closeReason: RedisCloseReason,
        pingInterval: TimeAmount?,
        logger: Logger,
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?,
        onShardUnsubscribed: (@Sendable (String) -> Void)? = nil
    ) {
        self.peer = peer
        self.onShardUnsubscribed = onShardUnsubscribed
        self.closeReason = closeReason
        self.pingInterval = pingInterval
        self.logger = logger
        self.onMessage = onMessage
        self.stateMachine = StateMachine(peer: peer, pingInterval: pingInterval)
    }

    func channelActive(context: ChannelHandlerContext) {
        if let pingInterval {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            healthCheckTask = context.eventLoop.scheduleRepeatedTask(initialDelay: pingInterval, delay: pingInterval) {
                _ in
                let (handler, context) = bound.value
                handler.run(handler.stateMachine.healthCheckTick(), context: context)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        healthCheckTask?.cancel()
        healthCheckTask = nil
        run(stateMachine.connectionClosed(), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason =
            error is NIOSSLError
            ? RedisConnectionError(.connectFailed, "TLS with Redis at \(peer) failed: \(error)")
            : RedisConnectionError(.connectionClosed, "Connection to Redis at \(peer) failed: \(error)")
        run(stateMachine.errorCaught(reason), context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        switch stateMachine.commandSent(
            expectedReplies: request.expectedReplies, promise: request.promise, unsubscribing: request.unsubscribing)
        {
        case .write:
            var buffer = context.channel.allocator.buffer(capacity: request.estimatedSize)
            request.encode(into: &buffer)
            context.write(wrapOutboundOut(buffer), promise: promise)
        case .fail(let requestPromise, let reason):
            requestPromise?.fail(reason)
            promise?.fail(reason)
        case let action:
            run(action, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
            while let reply = try reader.nextReply() {
                run(stateMachine.replyDecoded(reply), context: context)
            }
        } catch {
            run(stateMachine.decodeFailed(error.message), context: context)
        }
    }

    private func run(_ action: StateMachine<EventLoopPromise<RESPValue>>.Action, context: ChannelHandlerContext) {
        switch action {
        case .write, .none:
            break
        case .succeed(let promise, let reply):
            promise.succeed(reply)
        case .fail(let promise, let reason):
            promise?.fail(reason)
        case .failAll(let promises, let reason):
            closeReason.record(reason)
            for promise in promises { promise.fail(reason) }
        case .deliver(let message):
            onMessage?(message)
        case .shardUnsubscribed(let channel):
            logger.debug("Redis dropped a sharded subscription", metadata: ["channel": "\(channel)"])
            onShardUnsubscribed?(channel)
        case .sendPing:
            var buffer = context.channel.allocator.buffer(capacity: 14)
            RESPCommandEncoder.encode(["PING"], into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .close(let reason):
            closeReason.record(reason)
            logger.warning("Closing the connection to Redis", metadata: ["reason": "\(reason.message)"])
            context.close(promise: nil)
        case .logRefused(let text):
            logger.warning("Redis refused a command; message dropped", metadata: ["error": "\(text)"])
        case .logUnexpected(let reply):
            logger.debug("Unexpected reply from Redis", metadata: ["reply": "\(reply)"])
        }
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}
