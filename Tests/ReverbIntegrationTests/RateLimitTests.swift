import NIOCore
import Reverb
import Testing

@Suite("Rate limiting (protocol.md §10)")
struct RateLimitTests {
    static let limited = #"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"Rate limit exceeded\"}"}"#

    /// The window is long enough that a loaded CI machine sends the first messages inside it: a window
    /// that closes between two sends lets a message through, and the assertions would fail spuriously.
    /// Exact window arithmetic is tested in virtual time (WebSocketConnectionHandlerTests).
    static func app(terminate: Bool = false, decaySeconds: Int = 10) -> Application {
        .test(
            rateLimiting: .init(
                enabled: true, maxAttempts: 3, decaySeconds: decaySeconds, terminateOnLimit: terminate))
    }

    @Test(
        "§15.38 rate limit 3 per 2 s: the 4th message gets the exact 4301 and is not processed; works again after 2 s")
    func rateLimit() async throws {
        try await withTestServer(apps: [Self.app(decaySeconds: 2)]) { server in
            let client = try await server.connect()
            let start = NIODeadline.now()
            for _ in 0..<3 { try await client.send(text: #"{"event":"pusher:ping","data":{}}"#) }
            try await client.send(text: #"{"event":"pusher:subscribe","data":{"channel":"cache-limited"}}"#)
            try await client.send(text: #"{"event":"pusher:ping","data":{}}"#)
            for _ in 0..<3 { try await client.expectText(PusherFrames.pong) }
            try await client.expectText(Self.limited)
            try await client.expectText(Self.limited)
            // Poll until the window has passed; refused attempts are not counted.
            let deadline = NIODeadline.now() + .seconds(8)
            while true {
                try await client.send(text: #"{"event":"pusher:subscribe","data":{"channel":"cache-limited"}}"#)
                let text = try await client.nextText()
                if text != Self.limited {
                    #expect(NIODeadline.now() - start >= .milliseconds(1_900), "the window closed early")
                    #expect(text == PusherFrames.subscribed("cache-limited"))
                    try await client.expectText(PusherFrames.cacheMiss("cache-limited"))
                    break
                }
                guard NIODeadline.now() < deadline else {
                    Issue.record("still limited after 8 s")
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    @Test("§10 control frames are not counted; binary and invalid messages are")
    func whatCounts() async throws {
        try await withTestServer(apps: [Self.app()]) { server in
            let client = try await server.connect()
            for _ in 0..<5 { try await client.send(opcode: WebSocketFrame.ping, payload: [1]) }
            try await client.send(text: "junk")
            try await client.send(opcode: WebSocketFrame.binary, payload: Array(#"{"event":"pusher:ping"}"#.utf8))
            try await client.send(text: #"{"event":"pusher:ping"}"#)
            try await client.send(text: #"{"event":"pusher:ping"}"#)
            for _ in 0..<5 {
                let pong = try await client.nextFrame()
                #expect(pong.opcode == WebSocketFrame.pong && pong.payload == [1], "\(pong)")
            }
            try await client.expectError(4200, "Invalid message format")
            try await client.expectText(PusherFrames.pong)
            try await client.expectText(PusherFrames.pong)
            try await client.expectText(Self.limited)
        }
    }

    @Test("§15.38 terminate_on_limit: 4301 then Close 1008 Rate limit exceeded; others undisturbed")
    func terminateOnLimit() async throws {
        try await withTestServer(apps: [Self.app(terminate: true)]) { server in
            let other = try await server.connect()
            let client = try await server.connect()
            for _ in 0..<4 { try await client.send(text: #"{"event":"pusher:ping","data":{}}"#) }
            for _ in 0..<3 { try await client.expectText(PusherFrames.pong) }
            try await client.expectText(Self.limited)
            try await client.expectClose(code: 1008, reason: "Rate limit exceeded")
            try await other.sync()
        }
    }
}
