import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Plain HTTP on the shared listener: carries out what `HTTPConnectionStateMachine` decides (size
/// limits, idle and slow-sender timeouts, keep-alive, back-pressure, quiescing), answers the `/up`
/// and HTTP API routes, and switches to WebSocket for `{prefix}/app/{key}`.
final class HTTPServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: Node
    private let logger: Logger
    private var machine: HTTPConnectionStateMachine
    private var idleTimer: Scheduled<Void>?
    private let upgradeHandlers: [any RemovableChannelHandler]
    private let connections: HTTPConnectionRegistry?
    private var context: ChannelHandlerContext?

    /// - Parameters:
    ///   - upgradeHandlers: the HTTP handlers to remove when switching to WebSocket, the request
    ///     decoder last (it forwards bytes that arrived with the request head).
    ///   - connections: where the handler registers while it serves HTTP, for graceful shutdown.
    init(
        server: Node, upgradeHandlers: [any RemovableChannelHandler],
        connections: HTTPConnectionRegistry? = nil
    ) {
        self.server = server
        self.logger = server.logger
        self.upgradeHandlers = upgradeHandlers
        self.connections = connections
        self.machine = HTTPConnectionStateMachine(
            configuration: .init(
                maxRequestSize: server.configuration.server.maxRequestSize, prefixSegments: server.prefixSegments))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connections?.add(self, on: context.eventLoop)
        if context.channel.isActive { perform(machine.channelActive(now: context.eventLoop.now), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.channelActive(now: context.eventLoop.now), context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connections?.remove(self, on: context.eventLoop)
        idleTimer?.cancel()
        idleTimer = nil
        perform(machine.handlerRemoved(), context: context)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.channelInactive(), context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = context.eventLoop.now
        switch unwrapInboundIn(data) {
        case .head(let head): perform(machine.receivedHead(head, now: now), context: context)
        case .body(let chunk): perform(machine.receivedBody(chunk, now: now), context: context)
        case .end: perform(machine.receivedEnd(now: now), context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(machine.errorCaught(error, now: context.eventLoop.now), context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(machine.writabilityChanged(isWritable: context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        perform(machine.readRequested(), context: context)
    }

    /// Graceful shutdown (on the channel's loop): closes when idle, else after the response in flight.
    /// - Returns: the channel's close future; nil outside a pipeline.
    func quiesce() -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        perform(machine.quiesce(), context: context)
        return context.channel.closeFuture
    }

    // MARK: Actions

    private func perform(_ action: HTTPConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .sendContinue(let version):
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .continue))), promise: nil)
        case .dispatch(let head, let route, let body):
            cancelIdleTimer()
            dispatch(head: head, route: route, body: body, context: context)
        case .respond(let response, let version, let keepAlive, let withBody, let deadline):
            write(response, version: version, keepAlive: keepAlive, withBody: withBody, context: context)
            armIdleTimer(deadline: deadline, context: context)
        case .startUpgrade(let head, let key, let headers):
            cancelIdleTimer()
            // The HTTP decoder is still inside its decode call; switching protocols after it
            // returns lets it hand over the bytes that came with the request head intact.
            context.eventLoop.assumeIsolated().execute {
                self.upgrade(head: head, key: key, headers: headers, context: context)
            }
        case .armIdleTimer(let deadline):
            armIdleTimer(deadline: deadline, context: context)
        case .cancelIdleTimer:
            cancelIdleTimer()
        case .read:
            context.read()
        case .close:
            cancelIdleTimer()
            context.close(promise: nil)
        }
    }

    private func armIdleTimer(deadline: NIODeadline, context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.idleTimer = nil
            self.perform(self.machine.idleTimerFired(now: context.eventLoop.now), context: context)
        }
    }

    private func cancelIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func dispatch(head: HTTPRequestHead, route: Route, body: ByteBuffer, context: ChannelHandlerContext) {
        let request = HTTPAPIRequest(head: head, body: body)
        let future = server.httpAPI.respond(to: request, route: route, eventLoop: context.eventLoop)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            let response: HTTPResponse
            switch result {
            case .success(let answer):
                response = answer
            case .failure(let error):
                handler.logger.error("HTTP API failure", metadata: ["error": "\(error)", "route": "\(route.template)"])
                response = .internalError
            }
            handler.perform(handler.machine.responseReady(response, now: context.eventLoop.now), context: context)
        }
    }

    private func write(
        _ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, withBody: Bool, context: ChannelHandlerContext
    ) {
        context.write(wrapOutboundOut(.head(response.head(version: version, keepAlive: keepAlive))), promise: nil)
        if withBody && response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        guard !keepAlive else { return context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            self.perform(self.machine.closingResponseWritten(), context: context)
        }
    }

    // MARK: WebSocket upgrade

    private func upgrade(head: HTTPRequestHead, key: String, headers: HTTPHeaders, context: ChannelHandlerContext) {
        let channel = context.channel
        let pipeline = channel.pipeline.syncOperations
        // Not flushed here: the connection handler's first frame (`connection_established`, or the
        // refusal and its Close) is flushed right after, so the 101 and that frame leave in one
        // write and reach the client in one packet.
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))),
            promise: nil)
        let app = server.app(key: key)
        let connection = WebSocketConnectionHandler(
            node: server, app: app, origin: head.headers.first(name: "origin"), logger: server.logger)
        do {
            pipeline.removeHandler(context: context).assumeIsolated().whenComplete { _ in }
            for handler in upgradeHandlers.dropLast() {
                pipeline.removeHandler(handler).assumeIsolated().whenComplete { _ in }
            }
            try pipeline.addHandler(WebSocketFrameEncoder())
            try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: server.maxFrameSize)))
            try pipeline.addHandler(connection)
            if let decoder = upgradeHandlers.last {
                pipeline.removeHandler(decoder).assumeIsolated().whenComplete { _ in }
            }
            // The decoder hands over early frames from its removal task, outside any read batch,
            // so nothing flushes their replies; this runs after it.
            channel.eventLoop.assumeIsolated().execute { connection.flushPending() }
        } catch {
            logger.error("WebSocket upgrade failed", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTPServerHandler: Sendable {}
