import NIOCore
import NIOHTTP1
import Testing

@testable import Reverb

/// The connection rules of `http-api.md` §1, driven by hand with a manual clock.
@Suite("HTTP connection state machine")
struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine

    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeout = TimeAmount.seconds(15)

    static func machine(maxRequestSize: Int = 200, prefix: [String] = []) -> Machine {
        Machine(configuration: .init(maxRequestSize: maxRequestSize, prefixSegments: prefix))
    }

    static func head(
        _ method: HTTPMethod = .GET, _ uri: String = "/up", version: HTTPVersion = .http1_1,
        _ headers: [(String, String)] = [("Host", "x")]
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static let up = HTTPResponse.json(.ok, #"{"health":"OK"}"#)

    /// The `.respond` action for `response` sent at `now` (idle deadline 15 s later).
    static func reply(
        _ response: HTTPResponse, version: HTTPVersion = .http1_1, keepAlive: Bool, withBody: Bool = true,
        at now: NIODeadline = t0
    ) -> Machine.Action {
        .respond(response, version: version, keepAlive: keepAlive, withBody: withBody, idleDeadline: now + timeout)
    }

    /// Opens `machine` at `t0` and sends `head` + `.end` at `now`, expecting a dispatch.
    static func dispatch(_ head: HTTPRequestHead, on machine: inout Machine, at now: NIODeadline) {
        #expect(machine.receivedHead(head, now: now) == .none)
        #expect(machine.receivedEnd(now: now) == .dispatch(head: head, route: .up, body: ByteBuffer()))
    }

    /// `Fuzz/FuzzHTTPRequest/regressions/query-after-combining-mark`: split Character-wise, `?`
    /// followed by U+0301 is one Character, so the connection routed the whole target as the path
    /// (channel `presence-room?\u{301}info=user_count`) while the API signed `presence-room`.
    @Test("the path ends at the first ? byte, even when a combining mark follows it")
    func queryAfterCombiningMark() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        let head = Self.head(.GET, "/apps/1/channels/presence-room?\u{301}info=user_count")
        #expect(machine.receivedHead(head, now: Self.t0) == .none)
        #expect(
            machine.receivedEnd(now: Self.t0)
                == .dispatch(head: head, route: .channel(appID: "1", channel: "presence-room"), body: ByteBuffer()))
        let request = HTTPAPIRequest(head: head, body: ByteBuffer())
        #expect(request.rawPath == "/apps/1/channels/presence-room")
        #expect(request.rawQuery == "\u{301}info=user_count")
    }

    @Test("opening arms the idle timer for 15 s")
    func opening() {
        var machine = Self.machine()
        #expect(machine.channelActive(now: Self.t0) == .armIdleTimer(Self.t0 + Self.timeout))
        #expect(machine.idleDeadline == Self.t0 + Self.timeout)
    }

    @Test("a declared Content-Length over max_request_size gets 413 and closes before any body")
    func contentLengthTooLarge() {
        var machine = Self.machine(maxRequestSize: 200)
        _ = machine.channelActive(now: Self.t0)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "190")])
        #expect(Machine.estimatedSize(of: head) + 190 > 200)
        #expect(
            machine.receivedHead(head, now: Self.t0)
                == Self.reply(.payloadTooLarge, keepAlive: false))
        #expect(machine.receivedBody(ByteBuffer(repeating: 0x41, count: 190), now: Self.t0) == .none)
        #expect(machine.receivedEnd(now: Self.t0) == .none)
        #expect(machine.closingResponseWritten() == .close)
    }

    @Test("a declared Content-Length that fits is accepted; the limit counts head and body")
    func contentLengthFits() {
        var machine = Self.machine(maxRequestSize: 200)
        let probe = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "0")])
        let room = 200 - Machine.estimatedSize(of: probe)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "\(room)")])
        let room2 = 200 - Machine.estimatedSize(of: head)
        let fitting = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "\(room2)")])
        #expect(machine.receivedHead(fitting, now: Self.t0) == .none)
        let body = ByteBuffer(repeating: 0x41, count: room2)
        #expect(machine.receivedBody(body, now: Self.t0) == .none)
        #expect(
            machine.receivedEnd(now: Self.t0) == .dispatch(head: fitting, route: .events(appID: "1"), body: body))
    }

    @Test("a body without Content-Length is summed chunk by chunk; the chunk crossing the limit gets 413")
    func accumulatedBodyTooLarge() {
        var machine = Self.machine(maxRequestSize: 200)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Transfer-Encoding", "chunked")])
        let headSize = Machine.estimatedSize(of: head)
        #expect(machine.receivedHead(head, now: Self.t0) == .none)
        var sent = headSize
        while sent + 40 <= 200 {
            #expect(machine.receivedBody(ByteBuffer(repeating: 0x41, count: 40), now: Self.t0) == .none)
            sent += 40
        }
        #expect(
            machine.receivedBody(ByteBuffer(repeating: 0x41, count: 40), now: Self.t0 + .seconds(1))
                == Self.reply(.payloadTooLarge, keepAlive: false, at: Self.t0 + .seconds(1)))
        #expect(machine.receivedBody(ByteBuffer(repeating: 0x41, count: 1), now: Self.t0) == .none)
        #expect(machine.receivedEnd(now: Self.t0) == .none)
    }

    @Test("chunks under the limit reach the dispatch concatenated")
    func chunksConcatenated() {
        var machine = Self.machine(maxRequestSize: 500)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Transfer-Encoding", "chunked")])
        _ = machine.receivedHead(head, now: Self.t0)
        for part in ["{\"a\":", "1", "}"] {
            #expect(machine.receivedBody(ByteBuffer(string: part), now: Self.t0) == .none)
        }
        #expect(
            machine.receivedEnd(now: Self.t0)
                == .dispatch(head: head, route: .events(appID: "1"), body: ByteBuffer(string: "{\"a\":1}")))
    }

    @Test("a head alone over max_request_size gets 413")
    func headTooLarge() {
        var machine = Self.machine(maxRequestSize: 100)
        let head = Self.head(.GET, "/up", [("Host", "x"), ("X-Padding", String(repeating: "p", count: 100))])
        guard case .respond(let response, _, let keepAlive, _, _) = machine.receivedHead(head, now: Self.t0) else {
            Issue.record("no response")
            return
        }
        #expect(response == .payloadTooLarge && !keepAlive)
    }

    @Test("after a keep-alive response the idle timer is re-armed; it closes 15 s later, not before")
    func idleAfterResponse() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        let t1 = Self.t0 + .seconds(3)
        Self.dispatch(Self.head(), on: &machine, at: t1)
        #expect(machine.idleDeadline == nil)
        #expect(machine.idleTimerFired(now: Self.t0 + Self.timeout) == .none)
        let t2 = t1 + .milliseconds(5)
        #expect(
            machine.responseReady(Self.up, now: t2)
                == Self.reply(Self.up, keepAlive: true, at: t2))
        #expect(machine.idleTimerFired(now: t2 + Self.timeout - .nanoseconds(1)) == .none)
        #expect(machine.idleTimerFired(now: t2 + Self.timeout) == .close)
        #expect(machine.receivedHead(Self.head(), now: t2 + Self.timeout) == .none)
    }

    @Test("a request still incomplete 15 s after the connection went idle is cut off without a response")
    func slowSender() {
        var machine = Self.machine(maxRequestSize: 10_000)
        _ = machine.channelActive(now: Self.t0)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "100")])
        #expect(machine.receivedHead(head, now: Self.t0 + .seconds(1)) == .none)
        for second in 2..<15 {
            #expect(machine.receivedBody(ByteBuffer(string: "x"), now: Self.t0 + .seconds(Int64(second))) == .none)
        }
        #expect(machine.idleTimerFired(now: Self.t0 + .seconds(15)) == .close)
        #expect(machine.receivedBody(ByteBuffer(string: "x"), now: Self.t0 + .seconds(16)) == .none)
        #expect(machine.receivedEnd(now: Self.t0 + .seconds(16)) == .none)
    }

    @Test("a request completed within 15 s is answered: completing it stops the clock")
    func completedInTime() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        Self.dispatch(Self.head(), on: &machine, at: Self.t0 + .seconds(14))
        #expect(machine.idleTimerFired(now: Self.t0 + .seconds(15)) == .none)
        guard case .respond(_, _, true, _, _) = machine.responseReady(Self.up, now: Self.t0 + .seconds(16)) else {
            Issue.record("not answered with keep-alive")
            return
        }
    }

    @Test(
        "keep-alive: HTTP/1.1 by default, Connection: close honoured, HTTP/1.0 only when asked",
        arguments: [
            (HTTPVersion.http1_1, [(String, String)](), true),
            (HTTPVersion.http1_1, [("Connection", "close")], false),
            (HTTPVersion.http1_1, [("Connection", "Close")], false),
            (HTTPVersion.http1_0, [], false),
            (HTTPVersion.http1_0, [("Connection", "keep-alive")], true),
        ])
    func keepAlive(version: HTTPVersion, headers: [(String, String)], expected: Bool) {
        var machine = Self.machine()
        let head = Self.head(.GET, "/up", version: version, [("Host", "x")] + headers)
        Self.dispatch(head, on: &machine, at: Self.t0)
        #expect(
            machine.responseReady(Self.up, now: Self.t0)
                == Self.reply(Self.up, version: version, keepAlive: expected)
        )
        #expect(machine.closingResponseWritten() == (expected ? .none : .close))
        // After a closing response the next request is ignored; after a keep-alive one it is served.
        let next = machine.receivedHead(Self.head(), now: Self.t0)
        #expect(next == .none)
        #expect(
            machine.receivedEnd(now: Self.t0)
                == (expected ? .dispatch(head: Self.head(), route: .up, body: ByteBuffer()) : .none))
    }

    @Test("a response that asks to close (closeConnection) closes a keep-alive connection")
    func responseClosesConnection() {
        var machine = Self.machine()
        Self.dispatch(Self.head(), on: &machine, at: Self.t0)
        var response = Self.up
        response.closeConnection = true
        guard case .respond(_, _, false, _, _) = machine.responseReady(response, now: Self.t0) else {
            Issue.record("kept alive")
            return
        }
        #expect(machine.closingResponseWritten() == .close)
    }

    @Test("pipelined requests are answered one at a time, in order")
    func pipelined() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        let first = Self.head(.GET, "/up")
        let second = Self.head(.GET, "/nowhere")
        let third = Self.head(.HEAD, "/up")
        Self.dispatch(first, on: &machine, at: Self.t0)
        // Nothing more is taken while the first is unanswered.
        #expect(machine.receivedHead(second, now: Self.t0) == .none)
        #expect(machine.receivedEnd(now: Self.t0) == .none)
        #expect(machine.responseReady(Self.up, now: Self.t0) != .none)
        #expect(machine.responseReady(Self.up, now: Self.t0) == .none)
        #expect(machine.receivedHead(second, now: Self.t0) == .none)
        #expect(
            machine.receivedEnd(now: Self.t0)
                == Self.reply(.notFound, keepAlive: true))
        #expect(machine.receivedHead(third, now: Self.t0) == .none)
        #expect(machine.receivedEnd(now: Self.t0) == .dispatch(head: third, route: .up, body: ByteBuffer()))
        #expect(
            machine.responseReady(Self.up, now: Self.t0)
                == Self.reply(Self.up, keepAlive: true, withBody: false))
    }

    @Test("a known path with the wrong method is 405 with Allow")
    func methodNotAllowed() {
        var machine = Self.machine()
        #expect(machine.receivedHead(Self.head(.POST, "/up"), now: Self.t0) == .none)
        #expect(
            machine.receivedEnd(now: Self.t0)
                == .respond(
                    .methodNotAllowed(allow: ["GET", "HEAD"]), version: .http1_1, keepAlive: true, withBody: true,
                    idleDeadline: Self.t0 + Self.timeout))
    }

    @Test("Expect: 100-continue gets 100 Continue when the declared length fits")
    func expectContinue() {
        var machine = Self.machine(maxRequestSize: 500)
        let head = Self.head(
            .POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "10"), ("Expect", "100-continue")])
        #expect(machine.receivedHead(head, now: Self.t0) == .sendContinue(.http1_1))
        let tooLong = Self.head(
            .POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "1000"), ("Expect", "100-continue")])
        var other = Self.machine(maxRequestSize: 500)
        guard case .respond(.payloadTooLarge, _, false, _, _) = other.receivedHead(tooLong, now: Self.t0) else {
            Issue.record("no 413")
            return
        }
    }

    @Test("quiescing an idle connection closes it at once")
    func quiesceIdle() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        #expect(machine.quiesce() == .close)
        #expect(machine.idleDeadline == nil)
        #expect(machine.receivedHead(Self.head(), now: Self.t0) == .none)
    }

    @Test("quiescing with a request in flight answers it with Connection: close, then closes")
    func quiesceInFlight() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        Self.dispatch(Self.head(), on: &machine, at: Self.t0)
        #expect(machine.quiesce() == .none)
        #expect(
            machine.responseReady(Self.up, now: Self.t0)
                == Self.reply(Self.up, keepAlive: false))
        #expect(machine.closingResponseWritten() == .close)
    }

    @Test("quiescing while a request is still arriving lets it finish, then closes")
    func quiesceReceiving() {
        var machine = Self.machine(maxRequestSize: 500)
        let head = Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "2")])
        _ = machine.receivedHead(head, now: Self.t0)
        #expect(machine.quiesce() == .none)
        _ = machine.receivedBody(ByteBuffer(string: "{}"), now: Self.t0)
        #expect(
            machine.receivedEnd(now: Self.t0)
                == .dispatch(head: head, route: .events(appID: "1"), body: ByteBuffer(string: "{}")))
        guard case .respond(_, _, false, _, _) = machine.responseReady(.json(.ok, "{}"), now: Self.t0) else {
            Issue.record("kept alive while quiescing")
            return
        }
    }

    @Test("reads are held while the channel is unwritable and passed on once when it drains")
    func writability() {
        var machine = Self.machine()
        #expect(machine.readRequested() == .read)
        #expect(machine.writabilityChanged(isWritable: false) == .none)
        #expect(machine.readRequested() == .none)
        #expect(machine.readRequested() == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .read)
        #expect(machine.writabilityChanged(isWritable: true) == .none)
        #expect(machine.readRequested() == .read)
        // Unwritable without a pending read: becoming writable asks for nothing.
        #expect(machine.writabilityChanged(isWritable: false) == .none)
        #expect(machine.writabilityChanged(isWritable: true) == .none)
        // A read held when the handler leaves (WebSocket upgrade) is passed on.
        _ = machine.writabilityChanged(isWritable: false)
        _ = machine.readRequested()
        #expect(machine.handlerRemoved() == .read)
    }

    @Test("a parser error gets one 400 (413 for oversized headers), then input errors just close")
    func parserErrors() {
        var machine = Self.machine()
        #expect(
            machine.errorCaught(HTTPParserError.invalidMethod, now: Self.t0)
                == Self.reply(.badRequest, keepAlive: false))
        #expect(machine.errorCaught(HTTPParserError.invalidMethod, now: Self.t0) == .close)
        #expect(machine.closingResponseWritten() == .close)

        var overflow = Self.machine()
        _ = overflow.receivedHead(
            Self.head(.POST, "/apps/1/events", [("Host", "x"), ("Content-Length", "5")]), now: Self.t0)
        #expect(
            overflow.errorCaught(HTTPParserError.headerOverflow, now: Self.t0)
                == Self.reply(.payloadTooLarge, keepAlive: false))

        var inFlight = Self.machine()
        Self.dispatch(Self.head(), on: &inFlight, at: Self.t0)
        #expect(inFlight.errorCaught(HTTPParserError.invalidMethod, now: Self.t0) == .close)

        var reset = Self.machine()
        #expect(reset.errorCaught(ChannelError.ioOnClosedChannel, now: Self.t0) == .close)
    }

    static let upgradeHeaders: [(String, String)] = [
        ("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ]

    @Test("a valid handshake on {prefix}/app/{key} switches to WebSocket after the request end")
    func upgrade() {
        var machine = Self.machine(maxRequestSize: 10_000, prefix: ["ws"])
        _ = machine.channelActive(now: Self.t0)
        let head = Self.head(.GET, "/ws/app/key?protocol=7", Self.upgradeHeaders)
        #expect(machine.receivedHead(head, now: Self.t0) == .none)
        guard case .startUpgrade(head, "key", let headers) = machine.receivedEnd(now: Self.t0) else {
            Issue.record("no upgrade")
            return
        }
        #expect(headers["Sec-WebSocket-Accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        #expect(machine.idleDeadline == nil)
        #expect(machine.receivedHead(Self.head(), now: Self.t0) == .none)
        #expect(machine.quiesce() == .none)
    }

    @Test("a refused handshake is answered and closes; without the prefix it is a plain 404")
    func refusedUpgrade() {
        var machine = Self.machine(maxRequestSize: 10_000, prefix: ["ws"])
        let post = Self.head(.POST, "/ws/app/key", Self.upgradeHeaders)
        #expect(
            machine.receivedHead(post, now: Self.t0)
                == Self.reply(.methodNotAllowed(allow: ["GET"]), keepAlive: false))
        var unprefixed = Self.machine(maxRequestSize: 10_000, prefix: ["ws"])
        #expect(unprefixed.receivedHead(Self.head(.GET, "/app/key", Self.upgradeHeaders), now: Self.t0) == .none)
        guard case .respond(.notFound, _, _, _, _) = unprefixed.receivedEnd(now: Self.t0) else {
            Issue.record("not 404")
            return
        }
    }

    @Test("after the connection closes, a late response is dropped")
    func lateResponse() {
        var machine = Self.machine()
        _ = machine.channelActive(now: Self.t0)
        Self.dispatch(Self.head(), on: &machine, at: Self.t0)
        _ = machine.channelInactive()
        #expect(machine.responseReady(Self.up, now: Self.t0) == .none)
    }
}
