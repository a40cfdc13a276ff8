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

    /// How long a subscriber may stay unwritable (not reading) before it is closed with 4100.
    static let slowConsumerGracePeriod = TimeAmount.seconds(5)
    /// How long the server waits for the client's Close after sending its own.
    static let closeHandshakeTimeout = TimeAmount.seconds(1)

    struct Subscription {
        /// `user_id` from stored member data (presence, or signed private `channel_data`).
        var userID: JSONValue?
    }

    private enum State {
        case opening
        case open
        /// Our Close was sent; data frames are ignored until the client's Close or the timeout.
        case closing
        case closed
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
    private var context: ChannelHandlerContext?
    private var rawContext: ChannelHandlerContext?
    /// The channel's writability as last reported, so the broadcast path reads a field of this
    /// handler instead of touching the channel object of every recipient.
    private var writable = true
    private var inbox: ShardInbox?
    private var shard: LoopShard?
    private var state = State.opening
    var subscriptions: [String: Subscription] = [:]
    private var lastActivity = NIODeadline.now()
    private var pinged = false
    private var controlFramePings = false
    /// Set when the app limits message rates.
    var rateLimiter: RateLimiter?
    private var fragments: (opcode: WebSocketOpcode, buffer: ByteBuffer)?
    private var needsFlush = false
    private var broadcastPending = false
    private var holdsConnectionSlot = false
    private var registered = false
    private var closeTimeout: Scheduled<Void>?
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

    /// The identities of the users this connection is subscribed as.
    var userIdentities: Set<String> {
        Set(subscriptions.values.compactMap { $0.userID.flatMap(PresenceMember.identity(of:)) })
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
        if state == .opening { open() }
        context.fireChannelActive()
    }

    private func open() {
        guard state == .opening else { return }
        guard let app else { return fail(.applicationDoesNotExist) }
        guard app.reserveConnection() else { return fail(.overConnectionQuota) }
        holdsConnectionSlot = true
        guard OriginPolicy.allows(origin: origin, patterns: app.application.allowedOrigins) else {
            return fail(.originNotAllowed)
        }
        socketID = node.allocateSocketID()
        shard?.add(self, appID: app.id)
        registered = true
        state = .open
        lastActivity = .now()
        send(PusherFrames.connectionEstablished(socketID: socketID, activityTimeout: app.application.activityTimeout))
        flushIfNeeded()
        log(.debug, "Connection established")
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        closeTimeout?.cancel()
        slowConsumerTimer?.cancel()
        releaseEverything()
        log(.debug, "Connection closed")
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        releaseEverything()
        self.context = nil
        self.rawContext = nil
    }

    /// Unsubscribes from every channel and gives back the socket id and the connection slot.
    private func releaseEverything() {
        if let app {
            for channel in Array(subscriptions.keys) { unsubscribe(channel: channel, app: app) }
        }
        if registered, let app {
            registered = false
            shard?.remove(self, appID: app.id)
            node.releaseSocketID(socketID)
        }
        if holdsConnectionSlot {
            holdsConnectionSlot = false
            app?.releaseConnection()
        }
    }

    /// Sends a `pusher:error` and closes with the same code and message (4001, 4004, 4009, 4201).
    private func fail(_ error: PusherError) {
        send(PusherFrames.error(error))
        close(code: WebSocketErrorCode(codeNumber: error.code), reason: error.message)
    }

    /// Sends a Close frame, leaves every channel, and closes TCP on the client's Close or after 1 s.
    /// - Parameter timeoutAfterWritten: when set, the 1 s starts once the Close frame is written to
    ///   the socket, within at most this long.
    func close(code: WebSocketErrorCode, reason: String, timeoutAfterWritten: TimeAmount? = nil) {
        guard let context, state == .opening || state == .open else { return }
        log(.debug, "Closing connection", ["code": "\(code)", "reason": "\(reason)"])
        state = .closing
        releaseEverything()
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeString(reason)
        let loop = context.eventLoop.assumeIsolated()
        guard let cap = timeoutAfterWritten else {
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)), promise: nil)
            needsFlush = false
            closeTimeout = loop.scheduleTask(in: Self.closeHandshakeTimeout) { [weak self] in
                self?.context?.close(promise: nil)
            }
            return
        }
        let written = context.writeAndFlush(
            wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)))
        needsFlush = false
        closeTimeout = loop.scheduleTask(in: cap + Self.closeHandshakeTimeout) { [weak self] in
            self?.context?.close(promise: nil)
        }
        written.assumeIsolated().whenSuccess { [weak self] in
            guard let self, self.state == .closing else { return }
            self.closeTimeout?.cancel()
            self.closeTimeout = loop.scheduleTask(in: Self.closeHandshakeTimeout) { [weak self] in
                self?.context?.close(promise: nil)
            }
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
    func enqueueBroadcast(_ bytes: ByteBuffer) -> BroadcastWrite {
        guard state == .open, let rawContext else { return .notOpen }
        guard writable else {
            droppedFrames += 1
            startSlowConsumerTimer()
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
        writable = context.channel.isWritable
        if writable {
            slowConsumerTimer?.cancel()
            slowConsumerTimer = nil
        } else {
            startSlowConsumerTimer()
        }
        // A client that sends but does not read (a ping flood) would otherwise queue replies
        // without bound: stop reading from it until it catches up.
        try? context.channel.syncOptions?.setOption(.autoRead, value: writable)
        context.fireChannelWritabilityChanged()
    }

    private func startSlowConsumerTimer() {
        guard slowConsumerTimer == nil, let context else { return }
        slowConsumerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.slowConsumerGracePeriod) {
            [weak self] in
            guard let self, self.context != nil else { return }
            self.slowConsumerTimer = nil
            guard !self.writable else { return }
            self.log(.info, "Closing slow consumer", ["dropped_frames": "\(self.droppedFrames)"])
            // Nothing more is written behind the Close; what NIO and the kernel already hold goes
            // first, so the close timeout starts once the Close itself has left (bounded by the
            // grace period), and the client sees 4100 rather than a dropped connection.
            self.close(
                code: WebSocketErrorCode(codeNumber: 4100), reason: "Over capacity",
                timeoutAfterWritten: Self.slowConsumerGracePeriod)
        }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .opening, .closed:
            return
        case .closing:
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        case .open:
            break
        }
        lastActivity = .now()
        pinged = false
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return close(code: .protocolError, reason: "Protocol error")
        }
        switch frame.opcode {
        case .ping:
            controlFramePings = true
            context.write(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .pong:
            controlFramePings = true
        case .connectionClose:
            receivedClose(frame, context: context)
        case .text, .binary:
            guard fragments == nil else { return close(code: .protocolError, reason: "Expected a continuation frame") }
            guard frame.length <= maxMessageSize else { return messageTooLarge() }
            if frame.fin {
                handleMessage(frame.unmaskedData, isText: frame.opcode == .text)
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
                handleMessage(pending.buffer, isText: pending.opcode == .text)
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
        guard state == .open else {
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

    func shardUnsubscribe(channel: String, app: AppContext) {
        let key = app.key(channel)
        if shard?.unsubscribe(self, key: key) == true { inbox?.removeInterest(key) }
    }

    // MARK: Keep-alive

    /// One keep-alive sweep (`protocol.md` §9): prune if an earlier sweep pinged, else ping when idle.
    func sweep(now: NIODeadline, pingInterval: TimeAmount) {
        guard state == .open else { return }
        if pinged {
            log(.debug, "Pruning connection: pong not received")
            fail(.pongNotReceived)
            return
        }
        guard now - lastActivity >= pingInterval else { return }
        pinged = true
        if controlFramePings, let context {
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
            needsFlush = true
        } else {
            send(PusherFrames.ping)
        }
        flushIfNeeded()
    }
}

@available(*, unavailable)
extension WebSocketConnectionHandler: Sendable {}
