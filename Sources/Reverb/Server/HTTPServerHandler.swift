import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Plain HTTP on the shared listener: request size limits, idle and slow-sender timeouts, keep-alive,
/// the `/up` and HTTP API routes, and the switch to WebSocket for `{prefix}/app/{key}`.
final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Idle connections, and requests still incomplete, are closed after this long.
    static let idleTimeout = TimeAmount.seconds(15)

    private enum State {
        case idle
        case receiving(head: HTTPRequestHead, route: Route?, body: ByteBuffer, size: Int)
        case upgrading(head: HTTPRequestHead, key: String, headers: HTTPHeaders)
        case responding
        /// A response that closes the connection was sent; input is ignored.
        case closing
    }

    private let server: Node
    private let logger: Logger
    private var state = State.idle
    private var idleTimer: Scheduled<Void>?
    private let upgradeHandlers: [any RemovableChannelHandler]

    /// - Parameter upgradeHandlers: the HTTP handlers to remove when switching to WebSocket, the
    ///   request decoder last (it forwards bytes that arrived with the request head).
    init(server: Node, upgradeHandlers: [any RemovableChannelHandler]) {
        self.server = server
        self.logger = server.logger
        self.upgradeHandlers = upgradeHandlers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        context.fireChannelInactive()
    }

    private func armIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.idleTimeout) {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            receivedHead(head, context: context)
        case .body(var chunk):
            guard case .receiving(let head, let route, var body, let size) = state else { return }
            let newSize = size + chunk.readableBytes
            guard newSize <= server.configuration.server.maxRequestSize else {
                return respond(.payloadTooLarge, to: head, context: context, forceClose: true)
            }
            state = .responding
            body.writeBuffer(&chunk)
            state = .receiving(head: head, route: route, body: body, size: newSize)
        case .end:
            idleTimer?.cancel()
            switch state {
            case .receiving(let head, let route, let body, _):
                state = .responding
                dispatch(head: head, route: route, body: body, context: context)
            case .upgrading(let head, let key, let headers):
                // The HTTP decoder is still inside its decode call; switching protocols after it
                // returns lets it hand over the bytes that came with the request head intact.
                state = .closing
                context.eventLoop.assumeIsolated().execute {
                    self.upgrade(head: head, key: key, headers: headers, context: context)
                }
            case .idle, .responding, .closing:
                break
            }
        }
    }

    private func receivedHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        let limit = server.configuration.server.maxRequestSize
        let headSize = Self.estimatedSize(of: head)
        guard headSize <= limit else { return respond(.payloadTooLarge, to: head, context: context, forceClose: true) }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), headSize + length > limit {
            return respond(.payloadTooLarge, to: head, context: context, forceClose: true)
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let route = Route.match(path: path, prefixSegments: server.prefixSegments)
        if case .webSocket(let key)? = route {
            switch WebSocketHandshake.validate(head) {
            case .failure(let refusal):
                return respond(refusal, to: head, context: context, forceClose: true)
            case .success(let headers):
                state = .upgrading(head: head, key: key, headers: headers)
                return
            }
        }
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))))
                .whenFailure { _ in }
        }
        state = .receiving(
            head: head, route: route, body: context.channel.allocator.buffer(capacity: 0), size: headSize)
    }

    /// Request line + headers as sent, approximately: what counts against `max_request_size`.
    static func estimatedSize(of head: HTTPRequestHead) -> Int {
        var size = head.method.rawValue.utf8.count + head.uri.utf8.count + 12
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        return size + 2
    }

    private func dispatch(head: HTTPRequestHead, route: Route?, body: ByteBuffer, context: ChannelHandlerContext) {
        guard let route else { return respond(.notFound, to: head, context: context) }
        guard route.allowedMethods.contains(head.method.rawValue) else {
            return respond(.methodNotAllowed(allow: route.allowedMethods), to: head, context: context)
        }
        let request = HTTPAPIRequest(head: head, body: body)
        let future = server.httpAPI.respond(to: request, route: route, eventLoop: context.eventLoop)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let response):
                handler.respond(response, to: head, context: context)
            case .failure(let error):
                handler.logger.error("HTTP API failure", metadata: ["error": "\(error)", "route": "\(route.template)"])
                handler.respond(.internalError, to: head, context: context)
            }
        }
    }

    private func respond(
        _ response: HTTPResponse, to head: HTTPRequestHead, context: ChannelHandlerContext, forceClose: Bool = false
    ) {
        let keepAlive = head.isKeepAlive && !forceClose && !response.closeConnection
        state = keepAlive ? .idle : .closing
        context.write(wrapOutboundOut(.head(response.head(version: head.version, keepAlive: keepAlive))), promise: nil)
        if head.method != .HEAD && response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            armIdleTimer(context: context)
        } else {
            idleTimer?.cancel()
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Only a malformed request gets an answer; a reset connection or a failed TLS handshake
        // has nobody to answer (and the pipelining handler allows a response only for the former).
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        switch state {
        case .idle, .receiving:
            let response: HTTPResponse
            if let parserError = error as? HTTPParserError, parserError == .headerOverflow {
                response = .payloadTooLarge
            } else {
                response = .badRequest
            }
            state = .closing
            var head = response.head(version: .http1_1, keepAlive: false)
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .upgrading, .responding, .closing:
            context.close(promise: nil)
        }
    }

    // MARK: WebSocket upgrade

    private func upgrade(head: HTTPRequestHead, key: String, headers: HTTPHeaders, context: ChannelHandlerContext) {
        state = .closing
        idleTimer?.cancel()
        let channel = context.channel
        let pipeline = channel.pipeline.syncOperations
        context.writeAndFlush(
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
