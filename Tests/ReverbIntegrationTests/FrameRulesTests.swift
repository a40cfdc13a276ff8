import NIOCore
import Reverb
import Testing

@Suite("Message size and frame rules (protocol.md §11)")
struct FrameRulesTests {
    static let tooBig = "Maximum message size exceeded"

    /// A `pusher:ping` padded to exactly `size` bytes.
    static func ping(ofSize size: Int) -> [UInt8] {
        let shell = #"{"event":"pusher:ping","data":{"p":""}}"#
        let text =
            #"{"event":"pusher:ping","data":{"p":""# + String(repeating: "x", count: size - shell.utf8.count) + #""}}"#
        precondition(text.utf8.count == size)
        return Array(text.utf8)
    }

    /// Splits `bytes` into `count` fragments (text, continuation..., final).
    func sendFragmented(
        _ client: WebSocketTestClient, _ bytes: [UInt8], count: Int, opcode: UInt8 = WebSocketFrame.text
    ) async throws {
        let size = (bytes.count + count - 1) / count
        var frames: [UInt8] = []
        for index in 0..<count {
            let part = Array(bytes[min(bytes.count, index * size)..<min(bytes.count, (index + 1) * size)])
            frames += WebSocketTestClient.encodeFrame(
                opcode: index == 0 ? opcode : WebSocketFrame.continuation, payload: part, fin: index == count - 1)
        }
        try await client.sendRaw(frames)
    }

    @Test("§15.39 max_message_size 1000: exactly 1000 bytes processed, whole or fragmented")
    func exactlyTheLimit() async throws {
        try await withTestServer(apps: [.test(maxMessageSize: 1000)]) { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.text, payload: Self.ping(ofSize: 1000))
            try await client.expectText(PusherFrames.pong)
            try await sendFragmented(client, Self.ping(ofSize: 1000), count: 3)
            try await client.expectText(PusherFrames.pong)
            try await sendFragmented(client, Self.ping(ofSize: 1000), count: 10, opcode: WebSocketFrame.binary)
            try await client.expectText(PusherFrames.pong)
        }
    }

    @Test(
        "§15.39 1001 bytes, fragmented or not, close 1009 Maximum message size exceeded; others undisturbed",
        arguments: [1, 2, 5])
    func overTheLimit(fragments: Int) async throws {
        try await withTestServer(apps: [.test(maxMessageSize: 1000)]) { server in
            let other = try await server.connect()
            try await other.subscribePublic("room")
            let whisperer = try await server.connect()
            try await whisperer.subscribePublic("room")
            let client = try await server.connect()
            try await client.subscribePublic("room")
            try await sendFragmented(client, Self.ping(ofSize: 1001), count: fragments)
            try await client.expectClose(code: 1009, reason: Self.tooBig)
            try await whisperer.send(text: #"{"event":"client-still","channel":"room","data":{}}"#)
            try await other.expectText(#"{"event":"client-still","channel":"room","data":{}}"#)
            try await other.sync()
        }
    }

    @Test("§11 oversize is decided from the frame header: no payload needs to arrive")
    func decidedFromHeader() async throws {
        try await withTestServer(apps: [.test(maxMessageSize: 1000)]) { server in
            let client = try await server.connect()
            let header = Array(
                WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.text, payload: Self.ping(ofSize: 1001)).prefix(8)
            )
            try await client.sendRaw(header)
            try await client.expectClose(code: 1009, reason: Self.tooBig)
        }
        try await withTestServer(apps: [.test(maxMessageSize: 0)]) { server in
            let client = try await server.connect()
            // A header announcing 17 MiB: over the 16 MiB ceiling that applies with 0.
            var header: [UInt8] = [0x81, 0x80 | 127]
            let length = 17 * 1024 * 1024
            for shift in stride(from: 56, through: 0, by: -8) { header.append(UInt8((length >> shift) & 0xFF)) }
            header += [1, 2, 3, 4]
            try await client.sendRaw(header)
            try await client.expectClose(code: 1009, reason: Self.tooBig)
        }
    }

    @Test("§11 max_message_size 0 accepts messages far beyond the default")
    func unlimited() async throws {
        try await withTestServer(apps: [.test(maxMessageSize: 0)]) { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.text, payload: Self.ping(ofSize: 200_000))
            try await client.expectText(PusherFrames.pong)
        }
    }

    @Test("§15.40 unmasked frame → Close 1002")
    func unmasked() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(
                opcode: WebSocketFrame.text, payload: Array(#"{"event":"pusher:ping"}"#.utf8), masked: false)
            try await client.expectClose(code: 1002)
        }
    }

    @Test(
        "§15.40 invalid UTF-8 text → Close 1007",
        arguments: [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0x7B, 0xC0, 0xAF, 0x7D]] as [[UInt8]])
    func invalidUTF8(bytes: [UInt8]) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.text, payload: bytes)
            try await client.expectClose(code: 1007)
        }
    }

    @Test("§11 invalid UTF-8 split across fragments → Close 1007")
    func invalidUTF8Fragmented() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            let bytes = Array(#"{"event":"pusher:ping","data":{"p":""#.utf8) + [0xCE] + Array(#""}}"#.utf8)
            try await sendFragmented(client, bytes, count: 2)
            try await client.expectClose(code: 1007)
        }
    }

    @Test("§11 valid UTF-8 split inside a character is reassembled")
    func utf8SplitAcrossFragments() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic("x")
            let peer = try await server.connect()
            try await peer.subscribePublic("x")
            let text = Array(#"{"event":"client-é","channel":"x","data":{"s":"κόσμε"}}"#.utf8)
            let cut = text.firstIndex(of: 0xC3)! + 1
            try await client.sendRaw(
                WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.text, payload: Array(text[..<cut]), fin: false)
                    + WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.continuation, payload: Array(text[cut...]))
            )
            try await peer.expectText(#"{"event":"client-é","channel":"x","data":{"s":"κόσμε"}}"#)
        }
    }

    @Test("§15.40 client Close 4000 bye is echoed, then TCP closes")
    func closeEchoed() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.sendClose(code: 4000, reason: "bye")
            let frame = try await client.nextFrame()
            #expect(frame.opcode == WebSocketFrame.close && frame.fin && !frame.masked, "\(frame)")
            #expect(frame.payload == [0x0F, 0xA0] + Array("bye".utf8))
            try await client.expectTCPClose()
        }
    }

    @Test("§11 valid close codes are echoed", arguments: [1000, 1001, 1003, 1007, 1011, 3000, 4999] as [UInt16])
    func validCloseCodes(code: UInt16) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.sendClose(code: code, reason: "r")
            try await client.expectClose(code: code, reason: "r", echo: false)
            try await client.expectTCPClose()
        }
    }

    @Test("§15.40 a fragmented message is reassembled and handled; control frames may interleave")
    func fragmentedReassembled() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            let parts = [#"{"event":"pus"#, #"her:subscribe","data":{"chan"#, #"nel":"frag"}}"#].map { Array($0.utf8) }
            try await client.sendRaw(
                WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.text, payload: parts[0], fin: false)
                    + WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.ping, payload: Array("mid".utf8))
                    + WebSocketTestClient.encodeFrame(
                        opcode: WebSocketFrame.continuation, payload: parts[1], fin: false)
                    + WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.continuation, payload: [], fin: false)
                    + WebSocketTestClient.encodeFrame(opcode: WebSocketFrame.continuation, payload: parts[2]))
            let pong = try await client.nextFrame()
            #expect(pong.opcode == WebSocketFrame.pong && pong.payload == Array("mid".utf8), "\(pong)")
            try await client.expectSubscribed("frag")
        }
    }

    struct Violation: Sendable, CustomStringConvertible {
        var description: String
        var bytes: [UInt8]
        var code: UInt16 = 1002
    }

    static let violations: [Violation] = [
        Violation(
            description: "RSV1 set",
            bytes: WebSocketTestClient.encodeFrame(opcode: 1, payload: Array("{}".utf8), rsv: 4)),
        Violation(
            description: "RSV2 set",
            bytes: WebSocketTestClient.encodeFrame(opcode: 1, payload: Array("{}".utf8), rsv: 2)),
        Violation(
            description: "RSV3 on a ping", bytes: WebSocketTestClient.encodeFrame(opcode: 9, payload: [], rsv: 1)),
        Violation(description: "opcode 3", bytes: WebSocketTestClient.encodeFrame(opcode: 3, payload: [])),
        Violation(description: "opcode 0xB", bytes: WebSocketTestClient.encodeFrame(opcode: 0xB, payload: [])),
        Violation(
            description: "ping of 126 bytes",
            bytes: WebSocketTestClient.encodeFrame(opcode: 9, payload: Array(repeating: 0x61, count: 126))),
        Violation(
            description: "fragmented ping", bytes: WebSocketTestClient.encodeFrame(opcode: 9, payload: [1], fin: false)),
        Violation(
            description: "continuation without a message",
            bytes: WebSocketTestClient.encodeFrame(opcode: 0, payload: Array("{}".utf8))),
        Violation(
            description: "new text frame inside a fragmented message",
            bytes: WebSocketTestClient.encodeFrame(opcode: 1, payload: Array("{".utf8), fin: false)
                + WebSocketTestClient.encodeFrame(opcode: 1, payload: Array("}".utf8))),
        Violation(
            description: "Close payload of 1 byte", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03])),
        Violation(
            description: "Close code 999", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xE7])),
        Violation(
            description: "Close code 1004", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xEC])),
        Violation(
            description: "Close code 1005", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xED])),
        Violation(
            description: "Close code 1006", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xEE])),
        Violation(
            description: "Close code 1015", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xF7])),
        Violation(
            description: "Close code 2999", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x0B, 0xB7])),
        Violation(
            description: "Close code 5000", bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x13, 0x88])),
        Violation(
            description: "Close reason not UTF-8",
            bytes: WebSocketTestClient.encodeFrame(opcode: 8, payload: [0x03, 0xE8, 0xFF]),
            code: 1007),
    ]

    @Test("§11 protocol violations close with 1002 / 1007", arguments: violations)
    func violation(example: Violation) async throws {
        try await withTestServer { server in
            let other = try await server.connect()
            let client = try await server.connect()
            try await client.sendRaw(example.bytes)
            try await client.expectClose(code: example.code)
            try await other.sync()
        }
    }

    @Test("§11 after its Close the server ignores data frames and closes TCP on the client's Close")
    func ignoresDataAfterClose() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.text, payload: [0xFF])
            let close = try await client.nextFrame()
            #expect(close.opcode == WebSocketFrame.close && close.closeCode == 1007, "\(close)")
            try await client.send(text: #"{"event":"pusher:ping"}"#)
            try await client.sendClose(code: 1000)
            try await client.expectTCPClose()
        }
    }

    @Test("§1.5 after its Close the server ends TCP within about 1 s even without the client's Close")
    func closesTCPWithoutEcho() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.text, payload: [0xFF])
            let close = try await client.nextFrame()
            #expect(close.closeCode == 1007, "\(close)")
            // 1 s by the spec; the rest is slack for timers on a loaded two-core CI machine.
            try await client.expectTCPClose(timeout: .seconds(5))
        }
    }
}
