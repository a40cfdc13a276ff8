import NIOCore
import Reverb
import Testing

@Suite("Processing client messages (protocol.md §2)")
struct MessageTests {
    @Test(
        "§15.8 pusher:ping gets exactly pusher:pong",
        arguments: [
            #"{"event":"pusher:ping","data":{}}"#, #"{"event":"pusher:ping","data":""}"#, #"{"event":"pusher:ping"}"#,
            #"{"event":"pusher:ping","data":null}"#, #"{"event":"pusher:ping","data":[]}"#,
        ])
    func pusherPing(message: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: message)
            try await client.expectText(#"{"event":"pusher:pong"}"#)
        }
    }

    @Test("§15.9 ping control frame with payload abc gets a pong with abc")
    func pingControlFrame() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.ping, payload: Array("abc".utf8))
            let frame = try await client.nextFrame()
            #expect(frame.opcode == WebSocketFrame.pong && frame.fin, "\(frame)")
            #expect(frame.payload == Array("abc".utf8))
            #expect(!frame.masked)
            try await client.sync()
        }
    }

    @Test(
        "§15.10 malformed messages get the exact 4200 frame and the connection stays usable",
        arguments: [
            "not json", #"["x"]"#, "{}", #"{"event":123}"#, #"{"event":"pusher:foo"}"#,
            #"{"event":"pusher:signin","data":{"auth":"x","user_data":"{}"}}"#, "", "null", #""pusher:ping""#,
            #"{"event":null}"#, #"{"event":"pusher:ping","data":5}"#, #"{"event":"pusher:ping","data":"abc"}"#,
            #"{"event":"pusher:ping","data":true}"#, #"{"event":"pusher:ping"}garbage"#,
        ])
    func invalidFormat(message: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: message)
            try await client.expectText(
                #"{"event":"pusher:error","data":"{\"code\":4200,\"message\":\"Invalid message format\"}"}"#)
            try await client.sync()
        }
    }

    @Test("§2.1 pusher:pong is activity only: no reply")
    func pusherPongIsSilent() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: #"{"event":"pusher:pong","data":{}}"#)
            try await client.sync()
        }
    }

    @Test("§2.1 client pusher:connection_established re-sends the frame with the same socket_id")
    func connectionEstablishedAgain() async throws {
        try await withTestServer(apps: [.test(activityTimeout: 12)]) { server in
            let client = try await server.connect()
            try await client.send(text: #"{"event":"pusher:connection_established","data":{}}"#)
            try await client.expectText(PusherFrames.established(socketID: client.socketID, activityTimeout: 12))
        }
    }

    @Test("§2 binary frames are handled like text")
    func binaryLikeText() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(
                opcode: WebSocketFrame.binary, payload: Array(#"{"event":"pusher:ping","data":{}}"#.utf8))
            try await client.expectText(PusherFrames.pong)
            try await client.send(
                opcode: WebSocketFrame.binary,
                payload: Array(#"{"event":"pusher:subscribe","data":{"channel":"bin"}}"#.utf8))
            try await client.expectSubscribed("bin")
            try await client.send(opcode: WebSocketFrame.binary, payload: Array("oops".utf8))
            try await client.expectError(4200, "Invalid message format")
        }
    }

    @Test("§15.31 client event edge cases: non-client event silent, no channel 4200, data abc 4200, no data → null")
    func clientEventEdgeCases() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            try await sender.subscribePublic("x")
            try await peer.subscribePublic("x")
            try await sender.send(text: #"{"event":"foo","channel":"x"}"#)
            try await sender.sync()
            try await sender.send(text: #"{"event":"client-x"}"#)
            try await sender.expectError(4200, "Invalid message format")
            try await sender.send(text: #"{"event":"client-x","channel":"x","data":"abc"}"#)
            try await sender.expectError(4200, "Invalid message format")
            try await sender.send(text: #"{"event":"client-x","channel":"x","data":5}"#)
            try await sender.expectError(4200, "Invalid message format")
            try await sender.send(text: #"{"event":"client-x","channel":5}"#)
            try await sender.expectError(4200, "Invalid message format")
            try await sender.send(text: #"{"event":"client-nodata","channel":"x"}"#)
            try await sender.sync()
            // The peer sees only the valid whisper: "foo" and the refused ones never reach it.
            try await peer.expectText(#"{"event":"client-nodata","channel":"x","data":null}"#)
            try await peer.sync()
        }
    }

    @Test("§15.32 data as a JSON string is delivered parsed, values kept exactly")
    func dataStringDeliveredAsJSON() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            try await sender.subscribePublic("x")
            try await peer.subscribePublic("x")
            try await sender.send(text: #"{"event":"client-a","channel":"x","data":"{\"a\":{}}"}"#)
            try await peer.expectText(#"{"event":"client-a","channel":"x","data":{"a":{}}}"#)
            try await sender.send(
                text: #"{"event":"client-b","channel":"x","data":{"n":1.0,"big":12345678901234567890,"e":[],"o":{}}}"#)
            try await peer.expectText(
                #"{"event":"client-b","channel":"x","data":{"n":1.0,"big":12345678901234567890,"e":[],"o":{}}}"#)
            try await sender.send(text: #"{"event":"client-c","channel":"x","data":""}"#)
            try await sender.send(text: #"{"event":"client-d","channel":"x","data":[1,"two"]}"#)
            try await peer.expectText(#"{"event":"client-c","channel":"x","data":""}"#)
            try await peer.expectText(#"{"event":"client-d","channel":"x","data":[1,"two"]}"#)
            try await sender.sync()
        }
    }
}
