import NIOCore
import Reverb
import Testing

@Suite("Connection and handshake (protocol.md §1)")
struct HandshakeTests {
    @Test(
        "§15.1 any or no query string gives connection_established with a valid socket_id",
        arguments: ["?protocol=7&client=js&version=8.4.0&flash=false", "?protocol=6&client=python", "", "?"])
    func anyQueryString(query: String) async throws {
        try await withTestServer(apps: [.test(activityTimeout: 45)]) { server in
            let first = try await server.connect(query: query)
            let second = try await server.connect(query: query)
            #expect(first.socketID != second.socketID)
        }
    }

    @Test("§15.1 activity_timeout is the app option")
    func activityTimeoutIsAdvertised() async throws {
        for timeout in [1, 30, 120] {
            try await withTestServer(apps: [.test(activityTimeout: timeout)]) { server in
                let client = try await server.upgrade()
                _ = try await client.expectEstablished(activityTimeout: timeout)
            }
        }
    }

    @Test("§15.1 socket_ids are distinct across many connections")
    func socketIDsAreUnique() async throws {
        try await withTestServer { server in
            var seen = Set<String>()
            for _ in 0..<20 {
                let client = try await server.connect()
                #expect(seen.insert(client.socketID).inserted)
                await client.drop()
            }
        }
    }

    @Test("§15.2 path ws: /ws/app/{key} connects and /app/{key} is 404", arguments: ["ws", "/ws", "/ws/"])
    func pathPrefix(path: String) async throws {
        try await withTestServer(path: path) { server in
            #expect(server.prefix == "/ws")
            _ = try await server.connect()
            let bare = try await server.open(path: "/app/\(server.app.key)")
            #expect(bare.response.status == 404, "\(bare.response)")
        }
    }

    @Test(
        "§1.1 trailing slash or extra segment is another route (404)",
        arguments: ["/app/reverb-key/", "/app/reverb-key/x", "/app/"])
    func extraSegments(path: String) async throws {
        try await withTestServer { server in
            let client = try await server.open(path: path)
            #expect(client.response.status == 404, "\(client.response)")
        }
    }

    @Test("§1.1 the key is percent-decoded and matched exactly")
    func keyMatching() async throws {
        try await withTestServer(apps: [.test(key: "key with space")]) { server in
            _ = try await server.connect(key: "key%20with%20space")
        }
        try await withTestServer { server in
            let client = try await server.upgrade(key: "REVERB-KEY")
            try await client.expectError(4001, "Application does not exist")
            try await client.expectClose(code: 4001, reason: "Application does not exist")
        }
    }

    @Test("§15.3 101 has the exact headers in order, the right accept value, no extension or subprotocol")
    func switchingProtocolsHeaders() async throws {
        try await withTestServer { server in
            var headers = WebSocketTestClient.standardHeaders(port: server.port)
            headers.append(("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"))
            headers.append(("Sec-WebSocket-Protocol", "pusher"))
            let client = try await server.open(path: "/app/reverb-key", headers: headers)
            #expect(client.response.statusLine == "HTTP/1.1 101 Switching Protocols")
            #expect(
                client.response.headers == [
                    .init(name: "Upgrade", value: "websocket"),
                    .init(name: "Connection", value: "Upgrade"),
                    .init(name: "Sec-WebSocket-Accept", value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                    .init(name: "X-Powered-By", value: "swift-reverb"),
                ])
            _ = try await client.expectEstablished(activityTimeout: 30)
        }
    }

    @Test("§15.3 Sec-WebSocket-Accept is computed from each key")
    func acceptValueForOtherKey() async throws {
        try await withTestServer { server in
            // Python: base64(sha1(b"AQIDBAUGBwgJCgsMDQ4PEA==" + GUID))
            let headers = WebSocketTestClient.standardHeaders(port: server.port, key: "AQIDBAUGBwgJCgsMDQ4PEA==")
            let client = try await server.open(path: "/app/reverb-key", headers: headers)
            #expect(client.response.values("Sec-WebSocket-Accept") == ["C/0nmHhBztSRGR1CwL6Tf4ZjwpY="])
        }
    }

    struct Refusal: Sendable, CustomStringConvertible {
        var description: String
        var method = "GET"
        var version = "HTTP/1.1"
        var replace: [String: String?] = [:]
        var status: Int
        var requiredHeaders: [RawHTTPResponse.Field] = []
    }

    static let refusals: [Refusal] = [
        Refusal(
            description: "POST → 405", method: "POST", status: 405,
            requiredHeaders: [.init(name: "Allow", value: "GET")]),
        Refusal(
            description: "HEAD → 405", method: "HEAD", status: 405,
            requiredHeaders: [.init(name: "Allow", value: "GET")]),
        Refusal(description: "HTTP/1.0 → 505", version: "HTTP/1.0", status: 505),
        Refusal(
            description: "no Upgrade → 426", replace: ["Upgrade": nil], status: 426,
            requiredHeaders: [
                .init(name: "Upgrade", value: "websocket"), .init(name: "Connection", value: "Upgrade"),
                .init(name: "Sec-WebSocket-Version", value: "13"),
            ]),
        Refusal(
            description: "Upgrade h2c → 426", replace: ["Upgrade": "h2c"], status: 426,
            requiredHeaders: [
                .init(name: "Upgrade", value: "websocket"), .init(name: "Connection", value: "Upgrade"),
                .init(name: "Sec-WebSocket-Version", value: "13"),
            ]),
        Refusal(
            description: "Connection keep-alive → 400", replace: ["Connection": "keep-alive"], status: 400),
        Refusal(
            description: "no Connection → 400", replace: ["Connection": nil], status: 400),
        Refusal(
            description: "no key → 400", replace: ["Sec-WebSocket-Key": nil], status: 400),
        Refusal(
            description: "key of 15 bytes → 400", replace: ["Sec-WebSocket-Key": "AQIDBAUGBwgJCgsMDQ4P"], status: 400),
        Refusal(
            description: "key not base64 → 400", replace: ["Sec-WebSocket-Key": "not a base64 key!!!!!!=="], status: 400
        ),
        Refusal(
            description: "key of 17 bytes → 400", replace: ["Sec-WebSocket-Key": "AQIDBAUGBwgJCgsMDQ4PEBE="],
            status: 400),
        Refusal(
            description: "version 8 → 426", replace: ["Sec-WebSocket-Version": "8"], status: 426,
            requiredHeaders: [.init(name: "Sec-WebSocket-Version", value: "13")]),
        Refusal(
            description: "no version → 426", replace: ["Sec-WebSocket-Version": nil], status: 426,
            requiredHeaders: [.init(name: "Sec-WebSocket-Version", value: "13")]),
    ]

    @Test("§15.4 / §1.2 handshake refusals: status, headers, then TCP close", arguments: refusals)
    func handshakeRefusal(refusal: Refusal) async throws {
        try await withTestServer { server in
            var headers: [(String, String)] = []
            for (name, value) in WebSocketTestClient.standardHeaders(port: server.port) {
                if let replacement = refusal.replace[name] {
                    if let replacement { headers.append((name, replacement)) }
                } else {
                    headers.append((name, value))
                }
            }
            let client = try await server.open(
                path: "/app/reverb-key", method: refusal.method, version: refusal.version, headers: headers)
            #expect(client.response.status == refusal.status, "\(client.response)")
            #expect(client.response.statusLine.hasPrefix("HTTP/1."))
            // The connection closes after a refusal, so `Connection: close` may accompany `Upgrade`.
            for field in refusal.requiredHeaders {
                #expect(client.response.values(field.name).contains(field.value), "\(client.response)")
            }
            // Whatever the body, no upgrade follows: the server ends TCP and sends no frame.
            while true {
                guard let event = await client.nextEvent() else {
                    Issue.record("TCP still open after the refusal")
                    break
                }
                if case .eof = event { break }
                guard case .body = event else {
                    Issue.record("unexpected \(event)")
                    break
                }
            }
        }
    }

    @Test(
        "§1.2 header tokens are matched case-insensitively",
        arguments: [
            ("WebSocket", "Upgrade"), ("websocket", "keep-alive, Upgrade"), ("WEBSOCKET", "upgrade"),
        ])
    func caseInsensitiveTokens(upgrade: String, connection: String) async throws {
        try await withTestServer { server in
            var headers = WebSocketTestClient.standardHeaders(port: server.port)
            headers[1] = ("Upgrade", upgrade)
            headers[2] = ("Connection", connection)
            let client = try await server.open(path: "/app/reverb-key", headers: headers)
            #expect(client.response.status == 101, "\(client.response)")
            _ = try await client.expectEstablished(activityTimeout: 30)
        }
    }

    @Test("§1.2 bytes sent with the request head are processed as the first frames")
    func bytesWithTheHead() async throws {
        try await withTestServer { server in
            let frames =
                WebSocketTestClient.encodeFrame(opcode: 1, payload: Array(#"{"event":"pusher:ping","data":""}"#.utf8))
                + WebSocketTestClient.encodeFrame(
                    opcode: 1, payload: Array(#"{"event":"pusher:subscribe","data":{"channel":"early"}}"#.utf8))
            let client = try await server.upgrade(extraBytes: frames)
            _ = try await client.expectEstablished(activityTimeout: 30)
            try await client.expectText(PusherFrames.pong)
            try await client.expectSubscribed("early")
        }
    }

    @Test("§1.2 an upgrade request to another route is a plain HTTP request")
    func upgradeToOtherRoute() async throws {
        try await withTestServer { server in
            let up = try await server.open(path: "/up")
            #expect(up.response.status == 200, "\(up.response)")
            let missing = try await server.open(path: "/nowhere")
            #expect(missing.response.status == 404, "\(missing.response)")
        }
    }

    @Test("/up answers 200 {\"health\":\"OK\"}; unknown paths 404", arguments: ["", "ws"])
    func upRoute(path: String) async throws {
        try await withTestServer(path: path) { server in
            let up = try await server.http(
                RawHTTP.request(method: "GET", target: "\(server.prefix)/up", port: server.port))
            #expect(up.status == 200, "\(up)")
            #expect(up.bodyText == #"{"health":"OK"}"#)
            let missing = try await server.http(
                RawHTTP.request(method: "GET", target: "\(server.prefix)/nope", port: server.port))
            #expect(missing.status == 404, "\(missing)")
        }
    }
}
