public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open, authenticated connection to Redis (RESP2).
///
/// Commands may be sent from any thread and are pipelined: replies are matched to commands in the
/// order they were sent. No event loop ever waits on Redis.
public final class RedisConnection: Sendable {
    /// The NIO channel carrying the connection.
    public let channel: any Channel
    /// Where the connection goes, for messages.
    public let endpoint: RedisConnectionConfiguration.Endpoint

    private let closeReason: RedisCloseReason

    private init(channel: any Channel, endpoint: RedisConnectionConfiguration.Endpoint, closeReason: RedisCloseReason) {
        self.channel = channel
        self.endpoint = endpoint
        self.closeReason = closeReason
    }

    /// Completes when the connection is closed, by either side.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Opens a connection and runs the setup of spec `scaling.md` §5.1: connect (TCP keepalive on),
    /// TLS, `AUTH`, `SELECT` when the database is not 0, `CLIENT SETNAME` (errors ignored) and a
    /// `PING` that must answer `PONG`, all within `configuration.connectTimeout`.
    ///
    /// - Parameters:
    ///   - clientName: Sent with `CLIENT SETNAME` when set.
    ///   - pingInterval: Health-check `PING` period; the connection closes when one goes unanswered
    ///     for that long. `nil` disables it.
    ///   - onMessage: Receives `message` (and `smessage`) pushes once the connection is subscribed, on its event loop.
    ///   - onShardUnsubscribed: Receives the channel of each `sunsubscribe` push nobody asked for
    ///     (a Redis Cluster slot moved away, or the node became a replica), on its event loop.
    /// - Throws: `RedisConnectionError`.
    public static func connect(
        configuration: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        pingInterval: Duration? = .seconds(10),
        logger: Logger = Logger(label: "ReverbRedis"),
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)? = nil,
        onShardUnsubscribed: (@Sendable (String) -> Void)? = nil
    ) async throws(RedisConnectionError) -> RedisConnection {
        let endpoint = configuration.endpoint
        let sslContext = try configuration.tls.map { tls throws(RedisConnectionError) in try makeSSLContext(tls) }
        let deadline = NIODeadline.now() + TimeAmount(configuration.connectTimeout)
        let handlerLogger = logger
        let peer = endpoint.description
        let ping = pingInterval.map(TimeAmount.init)
        let closeReason = RedisCloseReason()

        var bootstrap = ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext, let tls = configuration.tls {
                        let name = tls.serverName ?? endpoint.hostName
                        let sniName = name.flatMap { isIPAddress($0) ? nil : $0 }
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sniName))
                    }
                    try sync.addHandler(
                        RedisChannelHandler(
                            peer: peer, closeReason: closeReason, pingInterval: ping, logger: handlerLogger,
                            onMessage: onMessage, onShardUnsubscribed: onShardUnsubscribed)
                    )
                }
            }
        let channel: any Channel
        do {
            switch endpoint {
            case .tcp(let host, let port):
                bootstrap = bootstrap.channelOption(.socketOption(.so_keepalive), value: 1)
                channel = try await bootstrap.connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch ChannelError.connectTimeout {
            throw RedisConnectionError(
                .connectTimeout,
                "Timed out after \(describe(configuration.connectTimeout)) connecting to Redis at \(peer)"
            )
        } catch {
            throw RedisConnectionError(.connectFailed, "Cannot connect to Redis at \(peer): \(reason(error))")
        }

        let connection = RedisConnection(channel: channel, endpoint: endpoint, closeReason: closeReason)
        // Closing the channel fails whichever setup command is waiting; the deadline check below
        // tells a timeout from other failures.
        let timeout = channel.eventLoop.scheduleTask(deadline: deadline) { [channel] in
            channel.close(promise: nil)
        }
        do {
            try await withTaskCancellationHandler {
                try await connection.setUp(configuration: configuration, clientName: clientName, logger: logger)
            } onCancel: {
                channel.close(promise: nil)
            }
            timeout.cancel()
            return connection
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            if NIODeadline.now() >= deadline {
                throw RedisConnectionError(
                    .connectTimeout,
                    "Timed out after \(describe(configuration.connectTimeout)) setting up the connection to Redis at \(peer)"
                )
            }
            throw error as? RedisConnectionError
                ?? RedisConnectionError(.connectionClosed, "Connection to Redis at \(peer) failed: \(error)")
        }
    }

    private func setUp(
        configuration: RedisConnectionConfiguration,
        clientName: String?,
        logger: Logger
    ) async throws(RedisConnectionError) {
        if let password = configuration.password {
            if let username = configuration.username {
                let reply = try await sendReturningErrors(["AUTH", username, password])
                if case .error(let text) = reply, text.hasPrefix("ERR wrong number of arguments") {
                    logger.warning(
                        "Redis does not support ACL users (Redis < 6); authenticating with the password only")
                    try checkAuth(try await sendReturningErrors(["AUTH", password]))
                } else {
                    try checkAuth(reply)
                }
            } else {
                try checkAuth(try await sendReturningErrors(["AUTH", password]))
            }
        }
        if configuration.database != 0 {
            if case .error(let text) = try await sendReturningErrors(["SELECT", String(configuration.database)]) {
                throw RedisConnectionError(
                    .selectFailed,
                    "Redis at \(endpoint) refused SELECT \(configuration.database): \(text)"
                )
            }
        }
        if let clientName {
            _ = try await sendReturningErrors(["CLIENT", "SETNAME", clientName])
        }
        // One round trip proves the link (and the TLS handshake) even when nothing else was sent.
        let pong = try await sendReturningErrors(["PING"])
        guard pong == .simpleString("PONG") else {
            throw RedisConnectionError(.errorReply, "Redis at \(endpoint) answered PING with \(pong)")
        }
    }

    private func checkAuth(_ reply: RESPValue) throws(RedisConnectionError) {
        if case .error(let text) = reply {
            throw RedisConnectionError(.authenticationFailed, "Redis at \(endpoint) refused AUTH: \(text)")
        }
    }

    /// Sends one command and returns its reply.
    ///
    /// - Throws: `RedisConnectionError`, of kind `.errorReply` carrying Redis's text for an error reply.
    public func send(_ arguments: [String]) async throws(RedisConnectionError) -> RESPValue {
        try Self.throwingErrorReply(try await sendReturningErrors(arguments), arguments.first)
    }

    /// Sends one command with binary arguments and returns its reply.
    ///
    /// - Throws: `RedisConnectionError`, of kind `.errorReply` carrying Redis's text for an error reply.
    public func send(_ arguments: [ByteBuffer]) async throws(RedisConnectionError) -> RESPValue {
        let name = arguments.first.map { String(buffer: $0) }
        return try Self.throwingErrorReply(try await submit(.binary(arguments), expectedReplies: 1), name)
    }

    /// `PUBLISH`es `payload` on `channel`; returns how many subscribers received it.
    public func publish(_ payload: ByteBuffer, to channel: String) async throws(RedisConnectionError) -> Int {
        let reply = try Self.throwingErrorReply(
            try await submit(.publish(channel: channel, payload: payload), expectedReplies: 1),
            "PUBLISH"
        )
        guard case .integer(let receivers) = reply else {
            throw RedisConnectionError(.protocolError, "Unexpected reply to PUBLISH: \(reply)")
        }
        return Int(receivers)
    }

    /// `SUBSCRIBE`s to `channels` and returns once Redis confirmed every one. Messages then go to the
    /// `onMessage` callback given to `connect`.
    public func subscribe(to channels: [String]) async throws(RedisConnectionError) {
        precondition(!channels.isEmpty, "SUBSCRIBE needs at least one channel")
        let reply = try await submit(.text(["SUBSCRIBE"] + channels), expectedReplies: channels.count)
        _ = try Self.throwingErrorReply(reply, "SUBSCRIBE")
    }

    /// Closes the connection and waits until it is closed.
    public func close() async {
        try? await channel.close()
    }

    /// Writes a `PUBLISH` without flushing and without waiting for the reply; an error reply is logged.
    /// Call `flush()` afterwards.
    func enqueuePublish(_ payload: ByteBuffer, to channel: String) {
        self.channel.write(RedisRequest(.publish(channel: channel, payload: payload), promise: nil), promise: nil)
    }

    /// Writes and flushes `SUBSCRIBE`/`UNSUBSCRIBE` (or their sharded forms) for `channels` without
    /// waiting; Redis's confirmations are consumed, an error reply goes to `promise` (logged without one).
    func enqueueSubscription(_ command: String, channels: [String], promise: EventLoopPromise<RESPValue>? = nil) {
        guard !channels.isEmpty else {
            promise?.succeed(.array([]))
            return
        }
        self.channel.writeAndFlush(
            RedisRequest(.text([command] + channels), expectedReplies: channels.count, promise: promise)
        ).whenFailure { error in
            promise?.fail(error)
        }
    }

    /// Writes `ASKING` without flushing (the next command may touch a slot being imported); its
    /// `+OK` is consumed.
    func enqueueAsking() {
        self.channel.write(RedisRequest(.text(["ASKING"]), promise: nil), promise: nil)
    }

    /// Writes a command without flushing; `promise` gets its reply (an error reply included).
    /// Call `flush()` afterwards.
    func enqueue(_ arguments: [ByteBuffer], promise: EventLoopPromise<RESPValue>) {
        self.channel.write(RedisRequest(.binary(arguments), promise: promise), promise: nil)
    }

    func flush() {
        channel.flush()
    }

    private func sendReturningErrors(_ arguments: [String]) async throws(RedisConnectionError) -> RESPValue {
        try await submit(.text(arguments), expectedReplies: 1)
    }

    private func submit(
        _ command: RedisRequest.Command,
        expectedReplies: Int
    ) async throws(RedisConnectionError) -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let endpoint = self.endpoint
        let closeReason = self.closeReason
        channel.writeAndFlush(RedisRequest(command, expectedReplies: expectedReplies, promise: promise)).whenFailure {
            error in
            promise.fail(
                error as? RedisConnectionError ?? closeReason.error
                    ?? RedisConnectionError(.connectionClosed, "Connection to Redis at \(endpoint) is closed: \(error)")
            )
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as RedisConnectionError {
            throw error
        } catch {
            throw RedisConnectionError(.connectionClosed, "Connection to Redis at \(endpoint) failed: \(error)")
        }
    }

    private static func throwingErrorReply(
        _ reply: RESPValue,
        _ command: String?
    ) throws(RedisConnectionError) -> RESPValue {
        if case .error(let text) = reply {
            throw RedisConnectionError(.errorReply, "Redis refused \(command?.uppercased() ?? "the command"): \(text)")
        }
        return reply
    }

    static func makeSSLContext(_ tls: RedisConnectionConfiguration.TLS) throws(RedisConnectionError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification =
            tls.verifyPeer ? (tls.verifyHostname ? .fullVerification : .noHostnameVerification) : .none
        do {
            if let caFile = tls.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let certificateFile = tls.certificateFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map {
                    .certificate($0)
                }
            }
            if let keyFile = tls.keyFile {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisConnectionError(.tlsConfiguration, "Cannot set up TLS for Redis: \(error)")
        }
    }

    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
    }
}

extension RedisConnectionConfiguration.Endpoint {
    fileprivate var hostName: String? {
        if case .tcp(let host, _) = self { return host }
        return nil
    }
}

/// The short reason of a connect failure, e.g. `Connection refused`.
private func reason(_ error: any Error) -> String {
    if let error = error as? NIOConnectionError {
        if let failure = error.connectionErrors.last { return reason(failure.error) }
        if let lookup = error.dnsAError ?? error.dnsAAAAError { return "cannot resolve the host name (\(lookup))" }
    }
    if let error = error as? IOError {
        return String(cString: strerror(error.errnoCode))
    }
    return "\(error)"
}

/// Whether `name` is an IPv4 or IPv6 literal (which TLS must not send as SNI).
private func isIPAddress(_ name: String) -> Bool {
    (try? SocketAddress(ipAddress: name, port: 0)) != nil
}
