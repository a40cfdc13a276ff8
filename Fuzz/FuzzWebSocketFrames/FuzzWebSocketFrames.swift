// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import Logging
    import NIOCore
    import NIOEmbedded
    import NIOWebSocket
    import Synchronization

    @testable import Reverb

    /// Two WebSocket connections of one app through the pipeline the server builds after the upgrade
    /// (frame encoder, frame decoder, `WebSocketConnectionHandler`) on an `EmbeddedChannel`, driven by a
    /// script read from the input: frames with fuzzed headers and payloads, raw bytes that split or join
    /// frames, correctly signed private and presence subscriptions, time moving on with keep-alive
    /// sweeps, the socket turning unwritable, HTTP API broadcasts and user terminations, client
    /// disconnects.
    ///
    /// Invariants: nothing traps; everything the server writes to a connection is a sequence of valid
    /// server frames (unmasked, final, known opcode, minimal length, control payloads ≤ 125 bytes,
    /// text frames UTF-8 JSON objects with an `event` string, Close codes a server may send), starting
    /// with `pusher:connection_established`; nothing follows a Close; once the socket is writable again
    /// a connection that sent a Close is gone within the close timeouts; and when every connection is
    /// gone no connection slot or channel membership is left behind.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let harness = Harness(options: input.byte())
        defer { harness.shutDown() }
        while !input.isAtEnd {
            harness.step(&input)
        }
        harness.finish()
    }

    final class Harness {
        let loop = EmbeddedEventLoop()
        let node: Node
        let app: AppContext
        var connections: [Connection] = []
        /// Channel names the script has used, for broadcasts and terminations.
        var channelNames = ["chat"]
        var userIDs = ["1"]

        init(options: UInt8) {
            let policies: [Application.ClientEventPolicy] = [.members, .all, .none, .members]
            let application = Application(
                id: "1", key: "key", secret: "secret",
                maxMessageSize: options & 0x01 != 0 ? 200 : 10_000,
                acceptClientEventsFrom: policies[Int(options >> 1 & 0x03)],
                rateLimiting: Application.RateLimiting(
                    enabled: options & 0x08 != 0, maxAttempts: 3, decaySeconds: 1, terminateOnLimit: options & 0x10 != 0
                ),
                presenceLimits: Application.PresenceLimits(maxMembers: options & 0x20 != 0 ? 1 : 0, maxMemberSize: 0),
                subscriptionCount: options & 0x40 != 0)
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            do {
                node = try Node(
                    configuration: ReverbConfiguration(apps: [application]), eventLoopGroup: loop, logger: logger,
                    clock: { 1_700_000_000 })
            } catch {
                fatalError("harness: node refused: \(error)")
            }
            app = node.app(key: "key")!
            for _ in 0..<2 { connections.append(Connection(harness: self)) }
        }

        func step(_ input: inout FuzzInput) {
            let op = input.byte()
            let connection = connections[Int(op >> 7)]
            switch op & 0x0F {
            case 0, 1, 2:
                // One frame: header byte as given (FIN, RSV, opcode), masked unless asked not to be.
                let header = input.byte()
                let payload = input.take(Self.length(&input))
                connection.send(frame(header: header, payload: payload, masked: op & 0x10 == 0, input: &input))
            case 3, 4:
                // A text message with the payload as given: reaches the Pusher message parser.
                let payload = input.take(Self.length(&input))
                connection.send(frame(header: 0x81, payload: payload, masked: true, input: &input))
            case 5:
                // Raw bytes: partial frames, several frames at once, garbage.
                connection.send(input.take(Int(input.byte())))
            case 6:
                connection.send(frame(header: 0x81, payload: signedSubscription(&input, for: connection), masked: true))
            case 7:
                let fragments = Int(input.byte() % 4) + 2
                let payload = input.take(Self.length(&input))
                let size = max(1, payload.count / fragments)
                var start = 0
                var first = true
                while start < payload.count || first {
                    let end = min(payload.count, start + size)
                    let fin = end >= payload.count
                    let opcode: UInt8 = first ? 0x1 : 0x0
                    connection.send(
                        frame(header: (fin ? 0x80 : 0) | opcode, payload: Array(payload[start..<end]), masked: true))
                    start = end
                    first = false
                }
            case 8:
                loop.advanceTime(by: .milliseconds(Int64(input.byte()) * 250))
                for connection in connections { connection.sweep() }
            case 9:
                connection.setWritable(!connection.channel.isWritable)
            case 10:
                let channel = channelNames[Int(input.byte()) % channelNames.count]
                let data = String(decoding: input.take(Int(input.byte() % 64)), as: UTF8.self)
                app.deliverChannelEvent(
                    channel: channel, frame: PusherFrames.channelEvent(name: "api-event", channel: channel, data: data),
                    except: input.bool() ? connection.handler.socketID : nil)
            case 11:
                _ = app.terminateLocally(identity: userIDs[Int(input.byte()) % userIDs.count])
            case 12:
                connection.disconnect()
            default:
                // A message from the corpus's vocabulary, so the parser's deeper paths are reached often.
                let messages = Self.messages(channel: channelNames[Int(input.byte()) % channelNames.count])
                let message = messages[Int(input.byte()) % messages.count]
                connection.send(frame(header: 0x81, payload: Array(message.utf8), masked: true))
            }
            loop.run()
            for connection in connections { connection.collect() }
        }

        /// After the script: the socket writable again, time past every close timeout, then every
        /// connection closed by the client.
        func finish() {
            for connection in connections where !connection.channel.isWritable { connection.setWritable(true) }
            loop.run()
            loop.advanceTime(by: .seconds(7))
            for connection in connections {
                connection.collect()
                if connection.output.sawClose {
                    require(!connection.channel.isActive, "a connection that sent a Close is still open 7 s later")
                }
            }
            for connection in connections { connection.disconnect() }
            loop.run()
            for connection in connections { connection.collect() }
            require(
                app.connectionCount.load(ordering: .relaxed) == 0, "connection slots left after every connection closed"
            )
            require(
                app.directory.withState { $0.channels.isEmpty && $0.rosters.isEmpty },
                "channel memberships left after every connection closed")
        }

        func shutDown() {
            for connection in connections { _ = try? connection.channel.finish(acceptAlreadyClosed: true) }
            try? loop.syncShutdownGracefully()
        }

        static func length(_ input: inout FuzzInput) -> Int {
            let first = Int(input.byte())
            guard first == 0xFF else { return first }
            return Int(input.byte()) << 8 | Int(input.byte())
        }

        func frame(header: UInt8, payload: [UInt8], masked: Bool, input: inout FuzzInput) -> [UInt8] {
            let lengthForm = input.byte()
            return Self.frame(header: header, payload: payload, masked: masked, nonMinimalLength: lengthForm == 0xFE)
        }

        func frame(header: UInt8, payload: [UInt8], masked: Bool) -> [UInt8] {
            Self.frame(header: header, payload: payload, masked: masked, nonMinimalLength: false)
        }

        static func frame(header: UInt8, payload: [UInt8], masked: Bool, nonMinimalLength: Bool) -> [UInt8] {
            var bytes = [header]
            let maskBit: UInt8 = masked ? 0x80 : 0
            if payload.count < 126 && !nonMinimalLength {
                bytes.append(maskBit | UInt8(payload.count))
            } else if payload.count <= 0xFFFF {
                bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
            } else {
                bytes.append(maskBit | 127)
                for shift in stride(from: 56, through: 0, by: -8) {
                    bytes.append(UInt8(truncatingIfNeeded: payload.count >> shift))
                }
            }
            guard masked else { return bytes + payload }
            let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
            bytes += mask
            for (index, byte) in payload.enumerated() { bytes.append(byte ^ mask[index % 4]) }
            return bytes
        }

        /// A `pusher:subscribe` to a private or presence channel, signed for this connection's socket id.
        func signedSubscription(_ input: inout FuzzInput, for connection: Connection) -> [UInt8] {
            let prefixes = [
                "private-", "presence-", "private-cache-", "presence-cache-", "private-encrypted-", "cache-",
            ]
            let prefix = prefixes[Int(input.byte()) % prefixes.count]
            let suffix = String(decoding: input.take(Int(input.byte() % 12)), as: UTF8.self)
            let channel = prefix + suffix
            if !channelNames.contains(channel) { channelNames.append(channel) }
            var channelData: String?
            if prefix.hasPrefix("presence") {
                switch input.byte() % 4 {
                case 0:
                    channelData = String(decoding: input.take(Int(input.byte() % 48)), as: UTF8.self)
                default:
                    let user = String(decoding: input.take(Int(input.byte() % 6)), as: UTF8.self)
                    if !userIDs.contains(user) { userIDs.append(user) }
                    channelData = JSONWriter.string(.object(JSONObject([("user_id", .string(user))])))
                }
            }
            let auth = ChannelAuthorization.auth(
                key: "key", secret: "secret", socketID: connection.handler.socketID, channel: channel,
                channelData: channelData)
            var data: [(key: String, value: JSONValue)] = [("channel", .string(channel)), ("auth", .string(auth))]
            if let channelData { data.append(("channel_data", .string(channelData))) }
            let message = JSONValue.object(
                JSONObject([("event", .string("pusher:subscribe")), ("data", .object(JSONObject(data)))]))
            return Array(JSONWriter.string(message).utf8)
        }

        static func messages(channel: String) -> [String] {
            let name = JSONWriter.string(.string(channel))
            return [
                #"{"event":"pusher:ping","data":{}}"#,
                #"{"event":"pusher:pong","data":{}}"#,
                #"{"event":"pusher:subscribe","data":{"channel":\#(name)}}"#,
                #"{"event":"pusher:subscribe","data":{"channel":"chat"}}"#,
                #"{"event":"pusher:subscribe","data":{"channel":"cache-news"}}"#,
                #"{"event":"pusher:unsubscribe","data":{"channel":\#(name)}}"#,
                #"{"event":"client-typing","channel":\#(name),"data":{"x":1}}"#,
                #"{"event":"client-typing","channel":"chat","data":"{\"x\":1}"}"#,
                #"{"event":"pusher:connection_established","data":{}}"#,
                #"{"event":"other","channel":"chat","data":{}}"#,
            ]
        }
    }

    /// One client connection and everything the server wrote to it.
    final class Connection {
        let channel: EmbeddedChannel
        let handler: WebSocketConnectionHandler
        var output = ServerFrameStream()

        init(harness: Harness) {
            channel = EmbeddedChannel(loop: harness.loop)
            handler = WebSocketConnectionHandler(
                node: harness.node, app: harness.app, origin: nil, logger: harness.node.logger)
            do {
                let pipeline = channel.pipeline.syncOperations
                try pipeline.addHandler(WebSocketFrameEncoder())
                try pipeline.addHandler(
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: harness.node.maxFrameSize)))
                try pipeline.addHandler(handler)
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4321)).wait()
            } catch {
                fatalError("harness: pipeline setup failed: \(error)")
            }
            collect()
        }

        func send(_ bytes: [UInt8]) {
            guard channel.isActive else { return }
            trace("client \(ObjectIdentifier(self).hashValue & 0xFF) sends \(bytes.count) bytes")
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes))
            } catch {
                // An error the pipeline did not handle reaches the channel's end: the handler must catch
                // every decoder error itself (it answers them with a Close).
                require(!channel.isActive, "an inbound error escaped the handler on an open channel: \(error)")
            }
        }

        func sweep() {
            guard channel.isActive else { return }
            handler.sweep(now: channel.embeddedEventLoop.now, pingInterval: .seconds(60))
        }

        func setWritable(_ writable: Bool) {
            guard channel.isActive else { return }
            channel.isWritable = writable
            channel.pipeline.fireChannelWritabilityChanged()
        }

        func disconnect() {
            guard channel.isActive else { return }
            channel.close(promise: nil)
        }

        /// Reads everything written since the last call into `output`, checking it frame by frame.
        func collect() {
            while true {
                let buffer: ByteBuffer?
                do {
                    buffer = try channel.readOutbound(as: ByteBuffer.self)
                } catch {
                    return require(false, "the server wrote something other than bytes: \(error)")
                }
                guard let buffer else { break }
                output.append(buffer.readableBytesView)
            }
        }
    }

    /// The bytes a server wrote to one connection, parsed as they arrive.
    struct ServerFrameStream {
        private var pending: [UInt8] = []
        private(set) var frames = 0
        private(set) var sawClose = false

        mutating func append(_ bytes: ByteBufferView) {
            guard !bytes.isEmpty else { return }
            require(!sawClose, "the server wrote \(bytes.count) bytes after its Close frame")
            pending += bytes
            while let frame = nextFrame() { check(frame) }
        }

        /// The next complete frame, removed from `pending`.
        private mutating func nextFrame() -> (opcode: UInt8, payload: [UInt8])? {
            guard pending.count >= 2 else { return nil }
            let first = pending[0]
            let second = pending[1]
            require(first & 0x80 != 0, "a server frame without FIN (the server never fragments): \(first)")
            require(first & 0x70 == 0, "a server frame with RSV bits set: \(first)")
            require(second & 0x80 == 0, "a masked server frame")
            var headerSize = 2
            var length = Int(second & 0x7F)
            if length == 126 {
                guard pending.count >= 4 else { return nil }
                length = Int(pending[2]) << 8 | Int(pending[3])
                require(length >= 126, "a 16-bit length for a \(length)-byte payload")
                headerSize = 4
            } else if length == 127 {
                guard pending.count >= 10 else { return nil }
                require(pending[2] & 0x80 == 0, "a 64-bit length with its top bit set")
                length = pending[2..<10].reduce(0) { $0 << 8 | Int($1) }
                require(length > 0xFFFF, "a 64-bit length for a \(length)-byte payload")
                headerSize = 10
            }
            guard pending.count >= headerSize + length else { return nil }
            let payload = Array(pending[headerSize..<(headerSize + length)])
            pending.removeFirst(headerSize + length)
            return (first & 0x0F, payload)
        }

        private mutating func check(_ frame: (opcode: UInt8, payload: [UInt8])) {
            trace("  server frame \(frame.opcode): \(String(decoding: frame.payload, as: UTF8.self).debugDescription)")
            require(!sawClose, "a frame after the server's Close")
            defer { frames += 1 }
            switch frame.opcode {
            case 0x1:
                guard let text = String(validating: frame.payload, as: UTF8.self) else {
                    return require(false, "a server text frame that is not UTF-8")
                }
                guard case .object(let object)? = try? JSONParser.parse(text),
                    case .string(let event)? = object["event"]
                else {
                    return require(false, "a server text frame that is not a Pusher event: \(text.debugDescription)")
                }
                if frames == 0 {
                    require(
                        event == "pusher:connection_established",
                        "the first frame is \(event), not connection_established")
                }
            case 0x8:
                require(frame.payload.count <= 125, "a Close frame of \(frame.payload.count) bytes")
                require(frame.payload.count != 1, "a Close frame with a 1-byte payload")
                if frame.payload.count >= 2 {
                    let code = Int(frame.payload[0]) << 8 | Int(frame.payload[1])
                    require(WebSocketConnectionHandler.isValidCloseCode(code), "a Close with code \(code)")
                    require(
                        String(validating: frame.payload[2...], as: UTF8.self) != nil,
                        "a Close reason that is not UTF-8")
                }
                require(frames > 0, "a Close before connection_established (the app exists)")
                sawClose = true
            case 0x9, 0xA:
                require(frame.payload.count <= 125, "a control frame of \(frame.payload.count) bytes")
            default:
                require(false, "a server frame with opcode \(frame.opcode)")
            }
        }
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzWebSocketFrames_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzWebSocketFrames", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzWebSocketFrames") }
    }
#endif
