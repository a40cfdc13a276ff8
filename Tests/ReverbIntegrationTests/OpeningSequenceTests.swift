import NIOCore
import Reverb
import Testing

@Suite("Opening sequence and connection endings (protocol.md §1.3, §1.5)")
struct OpeningSequenceTests {
    @Test("§15.5 unknown key gets the exact 4001 frame, then Close 4001")
    func unknownKey() async throws {
        try await withTestServer { server in
            let client = try await server.upgrade(key: "no-such-key")
            try await client.expectText(
                #"{"event":"pusher:error","data":"{\"code\":4001,\"message\":\"Application does not exist\"}"}"#)
            try await client.expectClose(code: 4001, reason: "Application does not exist")
        }
    }

    struct OriginCase: Sendable, CustomStringConvertible {
        var patterns: [String]
        var origin: String?
        var accepted: Bool
        var description: String { "\(patterns) \(origin ?? "no Origin") → \(accepted ? "accepted" : "refused")" }
    }

    static let originCases: [OriginCase] = [
        OriginCase(patterns: ["laravel.com"], origin: "http://laravel.com", accepted: true),
        OriginCase(patterns: ["laravel.com"], origin: "https://laravel.com:8443", accepted: true),
        OriginCase(patterns: ["laravel.com"], origin: "https://laravel.com/some/path", accepted: true),
        OriginCase(patterns: ["laravel.com"], origin: "http://sub.laravel.com", accepted: false),
        OriginCase(patterns: ["laravel.com"], origin: "http://localhost", accepted: false),
        OriginCase(patterns: ["laravel.com"], origin: nil, accepted: false),
        OriginCase(patterns: ["laravel.com"], origin: "http://LARAVEL.COM", accepted: false),
        OriginCase(patterns: ["laravel.com"], origin: "http://laravel.com.evil.io", accepted: false),
        OriginCase(patterns: ["*.laravel.com"], origin: "http://laravel.com", accepted: false),
        OriginCase(patterns: ["*.laravel.com"], origin: "https://a.b.laravel.com", accepted: true),
        OriginCase(patterns: ["localhost", "*.localhost"], origin: "http://sub.localhost", accepted: true),
        OriginCase(patterns: ["localhost", "*.localhost"], origin: "http://localhost:3000", accepted: true),
        OriginCase(patterns: ["*"], origin: nil, accepted: true),
        OriginCase(patterns: ["*"], origin: "http://anything.example", accepted: true),
        OriginCase(patterns: ["laravel.com", "*"], origin: nil, accepted: true),
    ]

    @Test("§15.6 / §1.3 origin examples", arguments: originCases)
    func origin(example: OriginCase) async throws {
        try await withTestServer(apps: [.test(allowedOrigins: example.patterns)]) { server in
            let client = try await server.upgrade(origin: example.origin)
            if example.accepted {
                _ = try await client.expectEstablished(activityTimeout: 30)
                try await client.sync()
            } else {
                try await client.expectText(
                    #"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"Origin not allowed\"}"}"#)
                try await client.expectClose(code: 4009, reason: "Origin not allowed")
            }
        }
    }

    @Test("§15.7 max_connections 1: second socket gets 4004 + Close 4004; after the first closes a new one connects")
    func maxConnections() async throws {
        try await withTestServer(apps: [.test(maxConnections: 1)]) { server in
            let first = try await server.connect()
            let second = try await server.upgrade()
            try await second.expectText(
                #"{"event":"pusher:error","data":"{\"code\":4004,\"message\":\"Application is over connection quota\"}"}"#
            )
            try await second.expectClose(code: 4004, reason: "Application is over connection quota")
            // The refused socket does not count: the first one is still the only one.
            let third = try await server.upgrade()
            try await third.expectError(4004, "Application is over connection quota")
            try await third.expectClose(code: 4004, reason: "Application is over connection quota")
            try await first.sync()
            // A clean close frees the slot once the server has echoed the Close.
            try await first.sendClose(code: 1000)
            try await first.expectClose(code: 1000, reason: "", echo: false)
            try await first.expectTCPClose()
            _ = try await server.connect()
        }
    }

    @Test("max_connections: a socket dropped without a Close frees its slot")
    func maxConnectionsAfterDrop() async throws {
        try await withTestServer(apps: [.test(maxConnections: 2)]) { server in
            let first = try await server.connect()
            _ = try await server.connect()
            await first.drop()
            // The server notices the TCP close asynchronously: poll with a deadline.
            let deadline = NIODeadline.now() + .seconds(5)
            while true {
                let client = try await server.upgrade()
                let text = try await client.nextText()
                if text.hasPrefix(#"{"event":"pusher:connection_established""#) { break }
                #expect(text == PusherFrames.error(4004, "Application is over connection quota"))
                try await client.expectClose(code: 4004, reason: "Application is over connection quota")
                guard NIODeadline.now() < deadline else {
                    Issue.record("the dropped socket still counts after 5 s")
                    break
                }
            }
        }
    }

    @Test("max_connections counts per app")
    func maxConnectionsPerApp() async throws {
        let other = Application(id: "999", key: "other-key", secret: "other-secret", maxConnections: 1)
        try await withTestServer(apps: [.test(maxConnections: 1), other]) { server in
            _ = try await server.connect()
            let second = try await server.upgrade(key: "other-key")
            _ = try await second.expectEstablished(activityTimeout: 30)
            let third = try await server.upgrade(key: "other-key")
            try await third.expectError(4004, "Application is over connection quota")
            try await third.expectClose(code: 4004, reason: "Application is over connection quota")
        }
    }

    @Test("§1.5 client Close is echoed; empty Close → 1000 without reason")
    func closeEcho() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.sendClose(code: 4000, reason: "bye")
            try await client.expectClose(code: 4000, reason: "bye", echo: false)
            try await client.expectTCPClose()

            let empty = try await server.connect()
            try await empty.sendClose(code: nil)
            let frame = try await empty.nextFrame()
            #expect(frame.opcode == WebSocketFrame.close)
            #expect(frame.payload == [0x03, 0xE8], "\(frame)")
            try await empty.expectTCPClose()
        }
    }

    @Test("§1.5 server shutdown closes every socket with 1001 Server shutting down")
    func shutdown() async throws {
        try await withTestServer { server in
            let subscribed = try await server.connect()
            try await subscribed.subscribePublic("news")
            let idle = try await server.connect()
            await server.server.shutdown()
            try await subscribed.expectClose(code: 1001, reason: "Server shutting down")
            try await idle.expectClose(code: 1001, reason: "Server shutting down")
        }
    }
}
