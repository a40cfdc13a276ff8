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
    /// The route template of the request being served, and when it was complete (metrics on only).
    private var requestTemplate = "unmatched"
    private var requestCompletedAt: NIODeadline?

    /// - Parameters:
    ///   - upgradeHandlers: the HTTP handlers to remove when switching to WebSocket: the pipelining
    ///     handler first (it delivers what it buffered), the request decoder last (it forwards
    ///     bytes that arrived with the request head).
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
                maxRequestSize: server.configuration.server.maxRequestSize, prefixSegments: server.prefixSegments,
                servesMetrics: server.metrics != nil && server.configuration.metrics.port == nil,
                servesDashboard: server.dashboard != nil))
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
        case .head(let head):
            if server.metrics != nil {
                let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                requestTemplate =
                    Route.match(
                        path: path, prefixSegments: server.prefixSegments, metrics: true,
                        dashboard: server.dashboard != nil)?
                    .template
                    ?? "unmatched"
                requestCompletedAt = nil
            }
            perform(machine.receivedHead(head, now: now), context: context)
        case .body(let chunk): perform(machine.receivedBody(chunk, now: now), context: context)
        case .end:
            requestCompletedAt = now
            perform(machine.receivedEnd(now: now), context: context)
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
            recordRequest(status: Int(response.status.code), now: context.eventLoop.now)
            write(response, version: version, keepAlive: keepAlive, withBody: withBody, context: context)
            armIdleTimer(deadline: deadline, context: context)
        case .startUpgrade(let head, let key, let headers):
            cancelIdleTimer()
            recordRequest(status: 101, now: context.eventLoop.now)
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

    /// `http_requests_total` and `http_request_duration_seconds` for the request just answered.
    private func recordRequest(status: Int, now: NIODeadline) {
        guard let metrics = server.metrics else { return }
        let seconds = requestCompletedAt.map { Double((now - $0).nanoseconds) / 1e9 } ?? 0
        metrics.recordRequest(route: requestTemplate, status: status, seconds: seconds)
        requestTemplate = "unmatched"
        requestCompletedAt = nil
    }

    private func dispatch(head: HTTPRequestHead, route: Route, body: ByteBuffer, context: ChannelHandlerContext) {
        let request = HTTPAPIRequest(head: head, body: body)
        let future: EventLoopFuture<HTTPResponse>
        if route == .metrics {
            future = server.metricsResponse(headers: head.headers, on: context.eventLoop)
        } else if case .dashboard(let page) = route, let dashboard = server.dashboard {
            if page == .stream {
                switch dashboard.openStream(request) {
                case .success(let grant):
                    return startStream(grant, dashboard: dashboard, version: head.version, context: context)
                case .failure(let refusal):
                    future = context.eventLoop.makeSucceededFuture(refusal)
                }
            } else {
                let client = context.channel.remoteAddress?.ipAddress ?? "unknown"
                future = dashboard.respond(to: request, route: page, client: client, eventLoop: context.eventLoop)
            }
        } else {
            future = server.httpAPI.respond(to: request, route: route, eventLoop: context.eventLoop)
        }
        // An HTTP API call of a configured app, for its `http_*` counters.
        let app: AppContext?
        if case .terminateUserConnectionsByKey = route {
            app = request.query("auth_key").flatMap { server.apps.app(key: $0) }
        } else {
            app = route.appID.flatMap { server.apps.app(id: $0) }
        }
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
            if let app, let shard = handler.server.fanout.inbox(for: context.eventLoop)?.loopShard {
                let received = body.readableBytes
                let sent = response.body.readableBytes
                shard.count(app: app.index) {
                    $0.httpCalls += 1
                    $0.httpReceivedBytes += received
                    $0.httpTransmittedBytes += sent
                }
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

    /// Hands the connection to the dashboard's event stream, which answers from now on.
    private func startStream(
        _ grant: Dashboard.StreamGrant, dashboard: Dashboard, version: HTTPVersion, context: ChannelHandlerContext
    ) {
        recordRequest(status: 200, now: context.eventLoop.now)
        let pipeline = context.pipeline.syncOperations
        let stream = DashboardStreamHandler(dashboard: dashboard, grant: grant, version: version)
        do {
            try pipeline.addHandler(stream, position: .after(self))
            pipeline.removeHandler(context: context).assumeIsolated().whenComplete { _ in }
        } catch {
            logger.error("Dashboard stream failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: WebSocket upgrade

    private func upgrade(head: HTTPRequestHead, key: String, headers: HTTPHeaders, context: ChannelHandlerContext) {
        let channel = context.channel
        let pipeline = channel.pipeline.syncOperations
        // The pipelining handler goes first: on removal it hands over what it held back behind the
        // upgrade request (bytes the HTTP decoder kept parsing as HTTP, which happens when our
        // handshake check and llhttp disagree on whether this is an upgrade, e.g. `Connection:
        // Upgrade<TAB>`, and the client sent frames before the 101). Delivered to this handler, a
        // parser error closes the connection; delivered after it, the error reached the pipeline's
        // end on an open channel (found by FuzzHTTPRequest).
        if let pipelining = upgradeHandlers.first {
            pipeline.removeHandler(pipelining).assumeIsolated().whenComplete { _ in }
        }
        guard channel.isActive else { return }
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
            for handler in upgradeHandlers.dropFirst().dropLast() {
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
