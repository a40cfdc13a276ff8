import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import Reverb

/// The handler in the pipeline the server builds after the upgrade, over `EmbeddedChannel`: client
/// frames in as bytes, the exact bytes written out, time moved with `advanceTime`.
@Suite("WebSocket connection handler")
struct WebSocketConnectionHandlerTests {
    static let pong = #"{"event":"pusher:pong"}"#
    static let ping = #"{"event":"pusher:ping"}"#

    /// A node on an `EmbeddedEventLoop` for `body`; afterwards its channels are closed and the
    /// loop's remaining timers cancelled.
    static func withServer(_ app: Application, _ body: (Server) throws -> Void) throws {
        let server = try Server(app)
        defer { server.shutDown() }
        try body(server)
    }

    /// One node on an `EmbeddedEventLoop`, shared by the connections a test opens.
    final class Server {
        let loop = EmbeddedEventLoop()
        let node: Node
        private var channels: [EmbeddedChannel] = []

        init(_ app: Application) throws {
            var logger = Logger(label: "test")
            logger.logLevel = .warning
            node = try Node(configuration: ReverbConfiguration(apps: [app]), eventLoopGroup: loop, logger: logger)
        }

        /// A connection through the upgraded pipeline, connected (so the opening sequence has run).
        /// - Parameter stall: when given, sits nearest the socket and can hold writes unwritten.
        func connect(key: String = "key", origin: String? = nil, stall: WriteStall? = nil) throws -> Connection {
            let channel = EmbeddedChannel(loop: loop)
            let handler = WebSocketConnectionHandler(
                node: node, app: node.app(key: key), origin: origin, logger: node.logger)
            let pipeline = channel.pipeline.syncOperations
            if let stall { try pipeline.addHandler(stall) }
            try pipeline.addHandler(WebSocketFrameEncoder())
            try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: node.maxFrameSize)))
            try pipeline.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4321)).wait()
            channels.append(channel)
            return Connection(loop: loop, channel: channel, handler: handler)
        }

        /// A connection past `connection_established` (checked, then discarded).
        func connectEstablished(stall: WriteStall? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws
            -> Connection
        {
            let connection = try connect(stall: stall)
            #expect(try connection.written() == connection.established, sourceLocation: sourceLocation)
            return connection
        }

        func shutDown() {
            for channel in channels { _ = try? channel.finish(acceptAlreadyClosed: true) }
            try? loop.syncShutdownGracefully()
        }
    }

    struct Connection {
        let loop: EmbeddedEventLoop
        let channel: EmbeddedChannel
        let handler: WebSocketConnectionHandler

        /// Every byte written since the last call.
        func written() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                bytes += buffer.readableBytesView
            }
            return bytes
        }

        func send(_ opcode: UInt8, _ payload: [UInt8] = [], fin: Bool = true) throws {
            try channel.writeInbound(
                ByteBuffer(bytes: WebSocketConnectionHandlerTests.clientFrame(opcode, payload, fin: fin)))
        }

        func send(text: String) throws {
            try send(0x1, Array(text.utf8))
        }

        /// Reports the channel's writability as the socket would.
        func setWritable(_ writable: Bool) {
            channel.isWritable = writable
            channel.pipeline.fireChannelWritabilityChanged()
        }

        /// Moves time on by `delay` and checks TCP closes then, not a millisecond earlier.
        func expectTCPClose(after delay: TimeAmount, sourceLocation: SourceLocation = #_sourceLocation) {
            loop.advanceTime(by: delay - .milliseconds(1))
            #expect(channel.isActive, sourceLocation: sourceLocation)
            loop.advanceTime(by: .milliseconds(1))
            #expect(!channel.isActive, sourceLocation: sourceLocation)
        }

        /// The keep-alive sweep as the server runs it, with the loop's time.
        func sweep(pingInterval: TimeAmount) {
            handler.sweep(now: loop.now, pingInterval: pingInterval)
        }

        var established: [UInt8] {
            WebSocketConnectionHandlerTests.text(
                #"{"event":"pusher:connection_established","data":"{\"socket_id\":\""# + handler.socketID
                    + #"\",\"activity_timeout\":30}"}"#)
        }
    }

    static func app(
        allowedOrigins: [String] = ["*"], maxConnections: Int? = nil,
        rateLimiting: Application.RateLimiting = Application.RateLimiting()
    ) -> Application {
        Application(
            id: "1", key: "key", secret: "secret", allowedOrigins: allowedOrigins, maxConnections: maxConnections,
            rateLimiting: rateLimiting)
    }

    // MARK: Frames as bytes

    /// An unmasked server frame.
    static func serverFrame(_ opcode: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            bytes.append(UInt8(payload.count))
        } else {
            bytes += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        return bytes + payload
    }

    static func text(_ text: String) -> [UInt8] { serverFrame(0x1, Array(text.utf8)) }

    static func close(_ code: UInt16, _ reason: String) -> [UInt8] {
        serverFrame(0x8, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }

    static func error(_ code: Int, _ message: String) -> [UInt8] {
        text(#"{"event":"pusher:error","data":"{\"code\":\#(code),\"message\":\"\#(message)\"}"}"#)
    }

    /// A masked client frame (payloads under 64 KiB).
    static func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            bytes.append(0x80 | UInt8(payload.count))
        } else {
            bytes += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        bytes += mask
        for (index, byte) in payload.enumerated() { bytes.append(byte ^ mask[index % 4]) }
        return bytes
    }

    // MARK: Opening sequence

    @Test("§1.3 an open connection gets connection_established with its socket id")
    func established() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connect()
            #expect(try connection.written() == connection.established)
            #expect(connection.handler.stateMachine.state == .open)
        }
    }

    @Test("§1.3 unknown key → 4001 error, Close 4001")
    func unknownApp() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connect(key: "nope")
            #expect(
                try connection.written()
                    == Self.error(4001, "Application does not exist") + Self.close(4001, "Application does not exist"))
        }
    }

    @Test("§1.3 over quota → 4004; every ending gives the slot back exactly once")
    func quota() throws {
        try Self.withServer(Self.app(maxConnections: 1)) { server in
            let first = try server.connect()
            #expect(try first.written() == first.established)
            let second = try server.connect()
            let message = "Application is over connection quota"
            #expect(try second.written() == Self.error(4004, message) + Self.close(4004, message))
            // The refused one held no slot: closing it frees nothing, the first still holds its slot.
            try second.channel.close().wait()
            let third = try server.connect()
            #expect(try third.written() == Self.error(4004, message) + Self.close(4004, message))
            // The client's Close ends the first: echoed, TCP closed, slot back (once, not again on inactive).
            try first.send(0x8, [0x03, 0xE8])
            #expect(try first.written() == Self.close(1000, ""))
            #expect(!first.channel.isActive)
            let fourth = try server.connect()
            #expect(try fourth.written() == fourth.established)
            let fifth = try server.connect()
            #expect(try fifth.written() == Self.error(4004, message) + Self.close(4004, message))
        }
    }

    @Test("§1.3 origin refused → 4009 after the slot was taken, and the slot is given back")
    func originRefused() throws {
        try Self.withServer(Self.app(allowedOrigins: ["laravel.com"], maxConnections: 1)) { server in
            let refused = try server.connect(origin: "http://evil.com")
            #expect(
                try refused.written() == Self.error(4009, "Origin not allowed") + Self.close(4009, "Origin not allowed")
            )
            let allowed = try server.connect(origin: "https://laravel.com")
            #expect(try allowed.written() == allowed.established)
        }
    }

    // MARK: Keep-alive

    @Test("§9 idle → pusher:ping at the sweep; unanswered at the next → 4201 and Close 4201")
    func pingThenPrune() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            server.loop.advanceTime(by: .seconds(59))
            connection.sweep(pingInterval: .seconds(60))
            #expect(try connection.written().isEmpty)
            server.loop.advanceTime(by: .seconds(1))
            connection.sweep(pingInterval: .seconds(60))
            #expect(try connection.written() == Self.text(Self.ping))
            server.loop.advanceTime(by: .seconds(60))
            connection.sweep(pingInterval: .seconds(60))
            let message = "Pong reply not received in time"
            #expect(try connection.written() == Self.error(4201, message) + Self.close(4201, message))
        }
    }

    @Test("§9 an answer (here pusher:pong) clears the ping mark; any frame is activity")
    func answerKeepsAlive() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            server.loop.advanceTime(by: .seconds(60))
            connection.sweep(pingInterval: .seconds(60))
            #expect(try connection.written() == Self.text(Self.ping))
            server.loop.advanceTime(by: .seconds(30))
            try connection.send(text: #"{"event":"pusher:pong","data":{}}"#)
            server.loop.advanceTime(by: .seconds(30))
            connection.sweep(pingInterval: .seconds(60))
            #expect(try connection.written().isEmpty)
            // 60 s after the pong: pinged again, not pruned.
            server.loop.advanceTime(by: .seconds(30))
            connection.sweep(pingInterval: .seconds(60))
            #expect(try connection.written() == Self.text(Self.ping))
        }
    }

    @Test("§9 a client ping frame gets its pong; from then on keep-alive pings are control frames")
    func controlFramePings() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            try connection.send(0x9, Array("hi".utf8))
            #expect(try connection.written() == Self.serverFrame(0xA, Array("hi".utf8)))
            server.loop.advanceTime(by: .seconds(1))
            connection.sweep(pingInterval: .seconds(1))
            #expect(try connection.written() == Self.serverFrame(0x9, []))
        }
    }

    // MARK: Close handshake

    @Test("§1.5 after our Close data frames are ignored and TCP closes after exactly 1 s")
    func closeTimeout() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            connection.handler.terminate()
            #expect(try connection.written() == Self.close(1008, "Connection terminated"))
            try connection.send(text: #"{"event":"pusher:ping"}"#)
            #expect(try connection.written().isEmpty)
            connection.expectTCPClose(after: .seconds(1))
        }
    }

    @Test("§1.5 after our Close the client's Close closes TCP at once")
    func closeAnswered() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            connection.handler.shutDown()
            #expect(try connection.written() == Self.close(1001, "Server shutting down"))
            try connection.send(0x8, [0x03, 0xE9])
            #expect(try connection.written().isEmpty)
            #expect(!connection.channel.isActive)
        }
    }

    // MARK: Slow consumer

    @Test("§1.5 unwritable: reading stops, broadcasts drop, Close 4100 after 5 s, TCP 1 s after the Close")
    func slowConsumer() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            connection.setWritable(false)
            #expect(Self.autoRead(of: connection.channel) == false)
            #expect(connection.handler.enqueueBroadcast(ByteBuffer(bytes: Self.text("x"))) == .dropped)
            #expect(connection.handler.droppedFrames == 1)
            server.loop.advanceTime(by: .milliseconds(4999))
            #expect(try connection.written().isEmpty)
            server.loop.advanceTime(by: .milliseconds(1))
            #expect(try connection.written() == Self.close(4100, "Over capacity"))
            #expect(connection.handler.enqueueBroadcast(ByteBuffer(bytes: Self.text("x"))) == .notOpen)
            // The embedded channel writes the Close at once, so the 1 s starts now.
            connection.expectTCPClose(after: .seconds(1))
        }
    }

    @Test("§4.3 writable again within the grace: reading resumes and nothing is closed")
    func slowConsumerRecovers() throws {
        try Self.withServer(Self.app()) { server in
            let connection = try server.connectEstablished()
            connection.setWritable(false)
            server.loop.advanceTime(by: .seconds(4))
            connection.setWritable(true)
            #expect(Self.autoRead(of: connection.channel) == true)
            server.loop.advanceTime(by: .seconds(10))
            #expect(try connection.written().isEmpty)
            #expect(connection.handler.enqueueBroadcast(ByteBuffer(bytes: Self.text("x"))) == .firstSinceFlush)
            connection.handler.flushBroadcasts()
            #expect(try connection.written() == Self.text("x"))
        }
    }

    @Test("§1.5 slow consumer whose Close stays behind unread bytes: TCP closes grace + 1 s after the Close")
    func slowConsumerCloseNeverWritten() throws {
        try Self.withServer(Self.app()) { server in
            let (connection, stall) = try Self.closedAsSlowConsumerBehindUnreadBytes(server)
            #expect(stall.heldWrites > 0)
            connection.expectTCPClose(after: .seconds(6))
        }
    }

    @Test("§1.5 slow consumer: the close timeout restarts, 1 s, once the Close is finally written")
    func slowConsumerCloseWrittenLate() throws {
        try Self.withServer(Self.app()) { server in
            let (connection, stall) = try Self.closedAsSlowConsumerBehindUnreadBytes(server)
            server.loop.advanceTime(by: .seconds(2))
            #expect(try connection.written().isEmpty)
            stall.release()
            #expect(try connection.written() == Self.close(4100, "Over capacity"))
            connection.expectTCPClose(after: .seconds(1))
        }
    }

    /// A connection whose socket holds every write from now on, left unwritable for the whole grace:
    /// its 4100 Close has just been written, and waits behind what the client has not read.
    static func closedAsSlowConsumerBehindUnreadBytes(_ server: Server) throws -> (Connection, WriteStall) {
        let stall = WriteStall()
        let connection = try server.connectEstablished(stall: stall)
        stall.stalled = true
        connection.setWritable(false)
        server.loop.advanceTime(by: .seconds(5))
        return (connection, stall)
    }

    /// Holds writes (and their promises) while `stalled`, as a socket whose peer does not read.
    final class WriteStall: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer

        var stalled = false
        private var context: ChannelHandlerContext?
        private var held: [(data: NIOAny, promise: EventLoopPromise<Void>?)] = []

        var heldWrites: Int { held.count }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if stalled {
                held.append((data, promise))
            } else {
                context.write(data, promise: promise)
            }
        }

        func flush(context: ChannelHandlerContext) {
            if !stalled { context.flush() }
        }

        /// Writes and flushes everything held; no longer stalls.
        func release() {
            stalled = false
            let writes = held
            held = []
            for write in writes { context?.write(write.data, promise: write.promise) }
            context?.flush()
        }

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            let writes = held
            held = []
            for write in writes { write.promise?.fail(ChannelError.ioOnClosedChannel) }
            context.close(mode: mode, promise: promise)
        }
    }

    /// The last `autoRead` the handler set (`EmbeddedChannel` records options, reads none back).
    static func autoRead(of channel: EmbeddedChannel) -> Bool? {
        channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }?.value as? Bool
    }

    // MARK: Rate limit

    @Test("§10 max_attempts per window: the next message gets 4301; a new window after decay_seconds")
    func rateLimitWindow() throws {
        let limits = Application.RateLimiting(enabled: true, maxAttempts: 2, decaySeconds: 10)
        try Self.withServer(Self.app(rateLimiting: limits)) { server in
            let connection = try server.connectEstablished()
            try connection.send(text: Self.ping)
            server.loop.advanceTime(by: .seconds(5))
            try connection.send(text: Self.ping)
            #expect(try connection.written() == Self.text(Self.pong) + Self.text(Self.pong))
            server.loop.advanceTime(by: .milliseconds(4999))
            try connection.send(text: Self.ping)
            #expect(try connection.written() == Self.error(4301, "Rate limit exceeded"))
            server.loop.advanceTime(by: .milliseconds(1))
            try connection.send(text: Self.ping)
            #expect(try connection.written() == Self.text(Self.pong))
        }
    }

    @Test("§10 terminate_on_limit: the 4301 frame, then Close 1008")
    func rateLimitTerminates() throws {
        let limits = Application.RateLimiting(enabled: true, maxAttempts: 1, decaySeconds: 60, terminateOnLimit: true)
        try Self.withServer(Self.app(rateLimiting: limits)) { server in
            let connection = try server.connectEstablished()
            try connection.send(text: Self.ping)
            try connection.send(text: Self.ping)
            #expect(
                try connection.written()
                    == Self.text(Self.pong) + Self.error(4301, "Rate limit exceeded")
                    + Self.close(1008, "Rate limit exceeded"))
        }
    }

    // MARK: Sign-in timeout

    @Test("§13.5 not signed in T s after connection_established → 4009 frame, Close 4009; a sign-in stops the clock")
    func userAuthenticationTimeout() throws {
        var app = Self.app()
        app.userAuthenticationTimeout = 2
        try Self.withServer(app) { server in
            let idle = try server.connectEstablished()
            let signed = try server.connectEstablished()
            server.loop.advanceTime(by: .seconds(1))
            let userData = #"{"id":"1"}"#
            let auth = UserAuthentication.auth(
                key: "key", secret: "secret", socketID: signed.handler.socketID, userData: userData)
            try signed.send(
                text: #"{"event":"pusher:signin","data":{"auth":"\#(auth)","user_data":"{\"id\":\"1\"}"}}"#)
            #expect(
                try signed.written()
                    == Self.text(
                        #"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"1\\\"}\"}"}"#))
            server.loop.advanceTime(by: .milliseconds(999))
            #expect(try idle.written().isEmpty)
            server.loop.advanceTime(by: .milliseconds(1))
            #expect(
                try idle.written()
                    == Self.error(4009, "Connection not authorized within timeout.")
                    + Self.close(4009, "Connection not authorized within timeout."))
            server.loop.advanceTime(by: .seconds(10))
            #expect(try signed.written().isEmpty)
            #expect(signed.channel.isActive && signed.handler.stateMachine.state == .open)
        }
    }
}
