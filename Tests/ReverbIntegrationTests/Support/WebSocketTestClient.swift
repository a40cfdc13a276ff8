import NIOCore
import NIOPosix
import Testing

enum TestClientError: Error, CustomStringConvertible {
    case timeout(String)
    case unexpected(String, ClientEvent)
    case handshakeFailed(RawHTTPResponse)

    var description: String {
        switch self {
        case .timeout(let what): return "timed out waiting for \(what)"
        case .unexpected(let what, let event): return "expected \(what), got \(event)"
        case .handshakeFailed(let response): return "handshake failed:\n\(response)"
        }
    }
}

/// A raw WebSocket client over a plain TCP channel: every byte it sends is chosen by the test, so it
/// can also send what a real client never would (unmasked frames, RSV bits, bad UTF-8, ...).
struct WebSocketTestClient: Sendable {
    /// How long a test waits for a frame it expects before failing.
    static let defaultTimeout = TimeAmount.seconds(10)
    /// The RFC 6455 example key, whose accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
    static let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="

    let channel: any Channel
    let inbox: ClientInbox
    /// The handshake response, headers in wire order.
    let response: RawHTTPResponse
    /// Set once `connection_established` was read (see `TestServer.connect`).
    var socketID: String = ""

    /// Opens a TCP connection to `port`, sends `request` (and `extraBytes` right behind it, in the same
    /// write), and reads the response head.
    static func open(port: Int, request: String, extraBytes: [UInt8] = []) async throws -> WebSocketTestClient {
        let inbox = ClientInbox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawClientHandler(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        var bytes = channel.allocator.buffer(string: request)
        bytes.writeBytes(extraBytes)
        try await channel.writeAndFlush(bytes)
        let first = await inbox.next(timeout: defaultTimeout, on: channel.eventLoop)
        guard case .response(let response)? = first else {
            channel.close(promise: nil)
            if let first { throw TestClientError.unexpected("an HTTP response", first) }
            throw TestClientError.timeout("the HTTP response")
        }
        return WebSocketTestClient(channel: channel, inbox: inbox, response: response)
    }

    /// A handshake request: the given header lines in order, after the request line.
    static func handshakeRequest(
        path: String, method: String = "GET", version: String = "HTTP/1.1", headers: [(String, String)]
    ) -> String {
        var text = "\(method) \(path) \(version)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// The headers a browser sends, in order; `origin` nil leaves `Origin` out.
    static func standardHeaders(port: Int, origin: String? = nil, key: String = sampleKey) -> [(String, String)] {
        var headers = [
            ("Host", "127.0.0.1:\(port)"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if let origin { headers.append(("Origin", origin)) }
        return headers
    }

    // MARK: Sending

    /// Writes bytes exactly as given.
    func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Encodes one frame. `masked` false sends the payload in the clear, which clients must never do.
    static func encodeFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true,
        maskKey: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes.append(UInt8(payload.count >> 8))
            bytes.append(UInt8(payload.count & 0xFF))
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        if masked {
            bytes.append(contentsOf: maskKey)
            for (i, byte) in payload.enumerated() { bytes.append(byte ^ maskKey[i % 4]) }
        } else {
            bytes.append(contentsOf: payload)
        }
        return bytes
    }

    func send(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true
    ) async throws {
        try await sendRaw(Self.encodeFrame(opcode: opcode, payload: payload, fin: fin, rsv: rsv, masked: masked))
    }

    /// One masked, final text frame.
    func send(text: String) async throws {
        try await send(opcode: WebSocketFrame.text, payload: Array(text.utf8))
    }

    /// A Close frame with a code and reason (`code` nil: empty payload).
    func sendClose(code: UInt16?, reason: String = "") async throws {
        var payload: [UInt8] = []
        if let code { payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8) }
        try await send(opcode: WebSocketFrame.close, payload: payload)
    }

    // MARK: Receiving

    /// The next event of any kind, nil on timeout.
    func nextEvent(timeout: TimeAmount = defaultTimeout) async -> ClientEvent? {
        await inbox.next(timeout: timeout, on: channel.eventLoop)
    }

    /// The next frame; throws on timeout or when something else (TCP close) comes first.
    func nextFrame(timeout: TimeAmount = defaultTimeout) async throws -> WebSocketFrame {
        guard let event = await nextEvent(timeout: timeout) else { throw TestClientError.timeout("a frame") }
        guard case .frame(let frame) = event else { throw TestClientError.unexpected("a frame", event) }
        return frame
    }

    /// The next frame's text; throws unless it is a final text frame.
    func nextText(timeout: TimeAmount = defaultTimeout) async throws -> String {
        let frame = try await nextFrame(timeout: timeout)
        guard frame.fin, let text = frame.text else { throw TestClientError.unexpected("a text frame", .frame(frame)) }
        return text
    }

    /// Expects the next frame to be a final text frame with exactly these bytes.
    func expectText(
        _ expected: String, timeout: TimeAmount = defaultTimeout, sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws
    {
        let frame = try await nextFrame(timeout: timeout)
        #expect(frame.opcode == WebSocketFrame.text && frame.fin, "\(frame)", sourceLocation: sourceLocation)
        #expect(String(decoding: frame.payload, as: UTF8.self) == expected, sourceLocation: sourceLocation)
    }

    /// Expects a Close frame with this code and reason next; then, when `echo`, answers it with a Close
    /// and expects the server to end TCP.
    func expectClose(
        code: UInt16, reason: String, echo: Bool = true, timeout: TimeAmount = defaultTimeout,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let frame = try await nextFrame(timeout: timeout)
        #expect(frame.opcode == WebSocketFrame.close, "\(frame)", sourceLocation: sourceLocation)
        #expect(frame.closeCode == code, sourceLocation: sourceLocation)
        #expect(frame.closeReason == reason, sourceLocation: sourceLocation)
        if echo {
            try? await sendClose(code: code)
            try await expectTCPClose(timeout: timeout, sourceLocation: sourceLocation)
        }
    }

    /// Expects a Close frame with this code, any reason (protocol violations: the reason is free text).
    func expectClose(
        code: UInt16, timeout: TimeAmount = defaultTimeout, sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws
    {
        let frame = try await nextFrame(timeout: timeout)
        #expect(frame.opcode == WebSocketFrame.close, "\(frame)", sourceLocation: sourceLocation)
        #expect(frame.closeCode == code, "\(frame)", sourceLocation: sourceLocation)
        try? await sendClose(code: code)
        try await expectTCPClose(timeout: timeout, sourceLocation: sourceLocation)
    }

    /// Expects the server to end TCP with nothing else arriving first.
    func expectTCPClose(timeout: TimeAmount = defaultTimeout, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let event = await nextEvent(timeout: timeout)
        guard let event else {
            Issue.record("TCP still open after \(timeout)", sourceLocation: sourceLocation)
            return
        }
        guard case .eof = event else {
            Issue.record("expected TCP close, got \(event)", sourceLocation: sourceLocation)
            return
        }
    }

    /// Asserts that nothing (no frame, no close) arrives within `interval`: the one bounded wait.
    func expectNoFrame(
        within interval: TimeAmount = .milliseconds(300), sourceLocation: SourceLocation = #_sourceLocation
    )
        async
    {
        if let event = await nextEvent(timeout: interval) {
            Issue.record("expected silence, got \(event)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Pusher helpers

    /// Round trip: a `pusher:ping` answered by `pusher:pong` proves every earlier message of this
    /// client was processed and nothing was sent to it before.
    func sync(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await send(text: #"{"event":"pusher:ping"}"#)
        try await expectText(#"{"event":"pusher:pong"}"#, sourceLocation: sourceLocation)
    }

    /// Subscribes with `data` as an object, fields in Pusher's order.
    func subscribe(_ channel: String, auth: String? = nil, channelData: String? = nil) async throws {
        var data = "{"
        if let auth { data += "\"auth\":\(jsonString(auth))," }
        if let channelData { data += "\"channel_data\":\(jsonString(channelData))," }
        data += "\"channel\":\(jsonString(channel))}"
        try await send(text: #"{"event":"pusher:subscribe","data":"# + data + "}")
    }

    func unsubscribe(_ channel: String) async throws {
        try await send(text: #"{"event":"pusher:unsubscribe","data":{"channel":"# + jsonString(channel) + "}}")
    }

    /// Expects the non-presence `subscription_succeeded` frame for `channel`.
    func expectSubscribed(_ channel: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await expectText(
            #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"# + jsonString(channel) + "}",
            sourceLocation: sourceLocation)
    }

    /// Subscribes to a channel that needs no signature and waits for success.
    func subscribePublic(_ channel: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await subscribe(channel)
        try await expectSubscribed(channel, sourceLocation: sourceLocation)
    }

    /// Expects an exact `pusher:error` frame.
    func expectError(_ code: Int, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await expectText(PusherFrames.error(code, message), sourceLocation: sourceLocation)
    }

    /// Closes the TCP connection without a Close frame.
    func drop() async {
        try? await channel.close()
    }
}

/// A JSON string literal for `text` (quotes, backslashes and control characters escaped).
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Expected server frames, built from the spec's templates.
enum PusherFrames {
    static func error(_ code: Int, _ message: String) -> String {
        #"{"event":"pusher:error","data":"{\"code\":"# + "\(code)" + #",\"message\":\""# + message + #"\"}"}"#
    }

    static func established(socketID: String, activityTimeout: Int = 30) -> String {
        #"{"event":"pusher:connection_established","data":"{\"socket_id\":\""# + socketID
            + #"\",\"activity_timeout\":"# + "\(activityTimeout)" + #"}"}"#
    }

    static let pong = #"{"event":"pusher:pong"}"#
    static let ping = #"{"event":"pusher:ping"}"#

    static func subscribed(_ channel: String) -> String {
        #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"# + jsonString(channel) + "}"
    }

    /// A frame whose `data` is `inner` (compact JSON) double-encoded as a string.
    static func internalEvent(_ event: String, inner: String, channel: String) -> String {
        #"{"event":"# + jsonString(event) + #","data":"# + jsonString(inner) + #","channel":"# + jsonString(channel)
            + "}"
    }

    static func cacheMiss(_ channel: String) -> String {
        #"{"event":"pusher:cache_miss","channel":"# + jsonString(channel) + "}"
    }
}
