import Logging
import NIOCore
import NIOWebSocket

/// One Pusher WebSocket connection, from `connection_established` to its Close (`protocol.md`).
///
/// A plain loop-bound handler (no task, no actor) to keep idle connections small (`style.md` §4.4).
/// Frames it sends are pre-encoded `OutboundFrame`s written through the frame encoder's context, so
/// broadcast bytes are shared by every recipient; control frames go through the encoder.
final class WebSocketConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    struct Subscription {
        /// `user_id` from stored member data (presence, or signed private `channel_data`).
        var userID: JSONValue?
    }

    /// What a broadcast write did.
    enum BroadcastWrite {
        /// Written; the first since the last flush, so the drain must flush this connection.
        case firstSinceFlush
        /// Written behind others that the drain already flushes.
        case queued
        /// Not written: the client is not reading (counted by the shard).
        case dropped
        /// Not written: the connection is not open.
        case notOpen
    }

    let node: Node
    let app: AppContext?
    let origin: String?
    /// Shared, never given per-connection metadata (that would allocate per connection);
    /// `log(_:_:)` adds `socket_id` and `app_id` only when a line is actually written.
    let logger: Logger
    /// Empty until the connection is established.
    private(set) var socketID = ""
    private(set) var context: ChannelHandlerContext?
    private var rawContext: ChannelHandlerContext?
    private var inbox: ShardInbox?
    private var shard: LoopShard?
    /// The connection's rules; the broadcast path reads its `state` and `isWritable` fields.
    /// Changed only by this handler and its extensions (sign-in: `+Users.swift`).
    var stateMachine = StateMachine()
    var subscriptions: [String: Subscription] = [:]
    /// Set when the app limits message rates.
    var rateLimiter: RateLimiter?
    /// Set by a successful `pusher:signin` (`protocol.md` §13).
    var signedInUser: SignedInUser?
    /// Closes the connection unless it signs in (`user_authentication_timeout`).
    var userAuthenticationTimer: Scheduled<Void>?
    private var fragments: (opcode: WebSocketOpcode, buffer: ByteBuffer)?
    private var needsFlush = false
    private var broadcastPending = false
    private var closeTimer: Scheduled<Void>?
    private var slowConsumerTimer: Scheduled<Void>?
    /// Broadcast frames dropped while the client was not reading.
    private(set) var droppedFrames = 0

    init(node: Node, app: AppContext?, origin: String?, logger: Logger) {
        self.node = node
        self.app = app
        self.origin = origin
        self.logger = logger
        if let limits = app?.application.rateLimiting, limits.enabled {
            self.rateLimiter = RateLimiter(maxAttempts: limits.maxAttempts, decaySeconds: limits.decaySeconds)
        }
    }

    var maxMessageSize: Int { app?.application.effectiveMaxMessageSize ?? 10_000 }

    /// The identities of the users this connection is subscribed or signed in as.
    var userIdentities: Set<String> {
        var identities = Set(subscriptions.values.compactMap { $0.userID.flatMap(PresenceMember.identity(of:)) })
        if let signedInUser { identities.insert(signedInUser.identity) }
        return identities
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.rawContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        self.inbox = node.fanout.inbox(for: context.eventLoop)
        self.shard = inbox?.loopShard
        if context.channel.isActive { open() }
    }

    func channelActive(context: ChannelHandlerContext) {
        open()
        context.fireChannelActive()
    }

    private func open() {
        guard let context else { return }
        let action = stateMachine.open(
            now: context.eventLoop.now, appFound: app != nil,
            reserveSlot: { app?.reserveConnection() ?? false },
            originAllowed: { OriginPolicy.allows(origin: origin, patterns: app?.application.allowedOrigins ?? []) })
        switch action {
        case .none:
            return
        case .fail(let error):
            fail(error)
        case .establish:
            guard let app else { return }
            socketID = node.allocateSocketID()
            shard?.add(self, appID: app.id)
            shard?.count(app: app.index) {
                $0.connected += 1
                $0.newConnections += 1
            }
            send(
                PusherFrames.connectionEstablished(socketID: socketID, activityTimeout: app.application.activityTimeout)
            )
            flushIfNeeded()
            startUserAuthenticationTimer(app: app, context: context)
            app.debug.record { DebugEvent(.connectionOpened, socketID: socketID, origin: origin) }
            log(.debug, "Connection established")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeTimer?.cancel()
        slowConsumerTimer?.cancel()
        cancelUserAuthenticationTimer()
        // Still registered here means no Close was exchanged: the TCP connection just went away.
        tearDown(stateMachine.channelInactive(), closeCode: 1006)
        log(.debug, "Connection closed")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown(stateMachine.handlerRemoved(), closeCode: 1006)
        self.context = nil
        self.rawContext = nil
    }

    /// Unsubscribes from every channel and gives back what the state machine says is still held.
    /// - Parameter closeCode: the Close code the debug console shows for the connection.
    private func tearDown(_ teardown: StateMachine.Teardown, closeCode: Int) {
        guard let app else { return }
        for channel in Array(subscriptions.keys) { unsubscribe(channel: channel, app: app) }
        signOut(app: app)
        if teardown.unregister {
            shard?.remove(self, appID: app.id)
            shard?.count(app: app.index) {
                $0.connected -= 1
                $0.newDisconnections += 1
            }
            node.releaseSocketID(socketID)
            app.debug.record { DebugEvent(.connectionClosed, socketID: socketID, code: closeCode) }
        }
        if teardown.releaseConnectionSlot { app.releaseConnection() }
    }

    /// Sends a `pusher:error` and closes with the same code and message (4001, 4004, 4009, 4201).
    func fail(_ error: PusherError) {
        sendError(error)
        close(code: WebSocketErrorCode(codeNumber: error.code), reason: error.message)
    }

    /// Sends a Close frame, leaves every channel, and closes TCP on the client's Close or after 1 s.
    func close(code: WebSocketErrorCode, reason: String) {
        guard let context, let action = stateMachine.close(code: code, reason: reason, now: context.eventLoop.now)
        else { return }
        perform(action, context: context)
    }

    private func perform(_ action: StateMachine.CloseAction, context: ChannelHandlerContext) {
        log(.debug, "Closing connection", ["code": "\(action.code)", "reason": "\(action.reason)"])
        tearDown(action.teardown, closeCode: Int(UInt16(webSocketErrorCode: action.code)))
        var payload = context.channel.allocator.buffer(capacity: 2 + action.reason.utf8.count)
        payload.write(webSocketErrorCode: action.code)
        payload.writeString(action.reason)
        let frame = wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload))
        needsFlush = false
        scheduleCloseTimer(at: action.closeTimeout, context: context)
        guard action.restartTimeoutWhenWritten else {
            context.writeAndFlush(frame, promise: nil)
            return
        }
        context.writeAndFlush(frame).assumeIsolated().whenSuccess { [weak self] in
            guard let self, let context = self.context,
                let deadline = self.stateMachine.closeFrameWritten(now: context.eventLoop.now)
            else { return }
            self.scheduleCloseTimer(at: deadline, context: context)
        }
    }

    private func scheduleCloseTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        closeTimer?.cancel()
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self, let context = self.context else { return }
            if self.stateMachine.closeTimeoutFired(now: context.eventLoop.now) { context.close(promise: nil) }
        }
    }

    /// HTTP `terminate_connections`: Close 1008 `Connection terminated`.
    func terminate() {
        close(code: .policyViolation, reason: "Connection terminated")
    }

    /// Server shutdown or restart: Close 1001 `Server shutting down`.
    func shutDown() {
        close(code: .goingAway, reason: "Server shutting down")
    }

    /// Logs with this connection's `socket_id` and `app_id`; nothing is built below the log level.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, _ extra: Logger.Metadata = [:]) {
        guard logger.logLevel <= level else { return }
        var metadata = extra
        metadata["socket_id"] = .string(socketID)
        metadata["app_id"] = .string(app?.id ?? "-")
        logger.log(level: level, message(), metadata: metadata)
    }

    // MARK: Writing

    /// Queues a frame for this client; flushed at the end of the read batch or by `flushIfNeeded`.
    func send(_ frame: OutboundFrame) {
        guard let rawContext else { return }
        rawContext.write(NIOAny(frame.bytes), promise: nil)
        needsFlush = true
        if let app {
            let bytes = LoopMetrics.payloadBytes(ofFrame: frame.bytes.readableBytes)
            shard?.count(app: app.index) {
                $0.messagesSent += 1
                $0.transmittedBytes += bytes
            }
        }
    }

    /// Sends a `pusher:error`, counted by code.
    func sendError(_ error: PusherError) {
        shard?.countPusherError(app: app?.index, code: error.code)
        app?.debug.record { DebugEvent(.error, socketID: socketID, code: error.code, message: error.message) }
        send(PusherFrames.error(error))
    }

    /// A data message from the client, for `/metrics`.
    func countReceived(payloadBytes: Int, app: AppContext) {
        shard?.count(app: app.index) {
            $0.messagesReceived += 1
            $0.receivedBytes += payloadBytes
        }
    }

    /// Flushes frames written outside a read batch.
    func flushPending() {
        flushIfNeeded()
    }

    private func flushIfNeeded() {
        if needsFlush, let context {
            needsFlush = false
            context.flush()
        }
    }

    /// Writes a broadcast frame without flushing; the drain flushes once per connection.
    /// - Parameter frameCount: how many frames `bytes` holds (a drain may join a run of frames).
    func enqueueBroadcast(_ bytes: ByteBuffer, frameCount: Int = 1) -> BroadcastWrite {
        guard stateMachine.state == .open, let rawContext else { return .notOpen }
        guard stateMachine.isWritable else {
            droppedFrames += frameCount
            apply(stateMachine.broadcastDropped(now: rawContext.eventLoop.now))
            return .dropped
        }
        rawContext.write(NIOAny(bytes), promise: nil)
        if broadcastPending { return .queued }
        broadcastPending = true
        return .firstSinceFlush
    }

    func flushBroadcasts() {
        broadcastPending = false
        // From the encoder's position straight to the socket, skipping the handlers behind it.
        rawContext?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let action = stateMachine.writabilityChanged(isWritable: context.channel.isWritable, now: context.eventLoop.now)
        apply(action.slowConsumerTimer)
        try? context.channel.syncOptions?.setOption(.autoRead, value: action.autoRead)
        context.fireChannelWritabilityChanged()
    }

    private func apply(_ change: StateMachine.TimerChange) {
        switch change {
        case .none:
            break
        case .cancel:
            slowConsumerTimer?.cancel()
            slowConsumerTimer = nil
        case .start(let deadline):
            guard let context else { return }
            slowConsumerTimer?.cancel()
            slowConsumerTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                guard let self, let context = self.context else { return }
                self.slowConsumerTimer = nil
                guard let action = self.stateMachine.slowConsumerTimerFired(now: context.eventLoop.now) else { return }
                self.log(.info, "Closing slow consumer", ["dropped_frames": "\(self.droppedFrames)"])
                self.shard?.countSlowConsumerDisconnection()
                self.shard?.countPusherError(app: self.app?.index, code: 4100)
                self.perform(action, context: context)
            }
        }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let now = context.eventLoop.now
        switch stateMachine.frameReceived(opcode: frame.opcode, now: now) {
        case .ignore:
            return
        case .closeChannel:
            context.close(promise: nil)
            return
        case .process:
            break
        }
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return close(code: .protocolError, reason: "Protocol error")
        }
        switch frame.opcode {
        case .ping:
            context.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .pong:
            break
        case .connectionClose:
            receivedClose(frame, context: context)
        case .text, .binary:
            guard fragments == nil else { return close(code: .protocolError, reason: "Expected a continuation frame") }
            guard frame.length <= maxMessageSize else { return messageTooLarge() }
            if frame.fin {
                handleMessage(frame.unmaskedData, isText: frame.opcode == .text, now: now)
            } else {
                fragments = (frame.opcode, frame.unmaskedData)
            }
        case .continuation:
            guard var pending = fragments else {
                return close(code: .protocolError, reason: "Unexpected continuation frame")
            }
            guard pending.buffer.readableBytes + frame.length <= maxMessageSize else { return messageTooLarge() }
            fragments = nil
            var data = frame.unmaskedData
            pending.buffer.writeBuffer(&data)
            if frame.fin {
                handleMessage(pending.buffer, isText: pending.opcode == .text, now: now)
            } else {
                fragments = pending
            }
        default:
            close(code: .protocolError, reason: "Unknown opcode")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard stateMachine.state == .open else {
            context.close(promise: nil)
            return
        }
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            messageTooLarge()
        } else if error is NIOWebSocketError {
            close(code: .protocolError, reason: "Protocol error")
        } else {
            log(.debug, "Connection error", ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func messageTooLarge() {
        guard let context else { return }
        close(code: .messageTooLarge, reason: "Maximum message size exceeded")
        context.close(promise: nil)
    }

    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        var code = WebSocketErrorCode.normalClosure
        var reason = ""
        if data.readableBytes == 1 { return close(code: .protocolError, reason: "Invalid close payload") }
        if data.readableBytes >= 2, let number = data.readInteger(as: UInt16.self) {
            guard Self.isValidCloseCode(Int(number)) else {
                return close(code: .protocolError, reason: "Invalid close code")
            }
            guard let bytes = data.readBytes(length: data.readableBytes),
                let text = String(validating: bytes, as: UTF8.self)
            else {
                return close(code: .dataInconsistentWithMessage, reason: "Invalid UTF-8 in close reason")
            }
            code = WebSocketErrorCode(codeNumber: Int(number))
            reason = text
        }
        if data.readableBytes == 0 && frame.unmaskedData.readableBytes == 0 {
            close(code: .normalClosure, reason: "")
        } else {
            close(code: code, reason: reason)
        }
        context.close(promise: nil)
    }

    static func isValidCloseCode(_ code: Int) -> Bool {
        (1000...1003).contains(code) || (1007...1011).contains(code) || (3000...4999).contains(code)
    }

    /// Tells this loop's inbox to pass on broadcasts of `channel`: before the subscription's
    /// `joinedAt` is drawn, so no later broadcast can miss this loop.
    func shardAddInterest(channel: String, app: AppContext) {
        inbox?.addInterest(app.key(channel))
    }

    /// - Parameter joinedAt: the broadcast sequence when the subscription was recorded.
    func shardSubscribe(channel: String, app: AppContext, joinedAt: UInt64) {
        shard?.subscribe(self, key: app.key(channel), joinedAt: joinedAt)
    }

    /// Takes back `shardAddInterest` for a subscription that was refused.
    func shardRemoveInterest(channel: String, app: AppContext) {
        inbox?.removeInterest(app.key(channel))
    }

    func shardUnsubscribe(channel: String, app: AppContext) {
        let key = app.key(channel)
        if shard?.unsubscribe(self, key: key) == true { inbox?.removeInterest(key) }
    }

    // MARK: Keep-alive

    /// One keep-alive sweep (`protocol.md` §9): prune if an earlier sweep pinged, else ping when idle.
    /// - Parameter now: the time of this connection's event loop.
    func sweep(now: NIODeadline, pingInterval: TimeAmount) {
        switch stateMachine.sweep(now: now, pingInterval: pingInterval) {
        case .none:
            return
        case .prune:
            log(.debug, "Pruning connection: pong not received")
            fail(.pongNotReceived)
        case .ping(controlFrame: true):
            context?.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            needsFlush = true
        case .ping(controlFrame: false):
            send(PusherFrames.ping)
        }
        flushIfNeeded()
    }
}

@available(*, unavailable)
extension WebSocketConnectionHandler: Sendable {}
