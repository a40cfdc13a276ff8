import NIOCore
import Reverb
import Testing

@Suite("Keep-alive (protocol.md §9)")
struct KeepAliveTests {
    // Tests that answer pings use ping_interval 2: a sweep prunes a socket pinged by the one before,
    // so an answer has one interval to arrive, and 1 s was missed on a loaded CI machine.
    static let pruned =
        #"{"event":"pusher:error","data":"{\"code\":4201,\"message\":\"Pong reply not received in time\"}"}"#

    @Test(
        "§15.36 ping_interval 2: idle socket gets pusher:ping; unanswered → 4201 + Close 4201; peers get member_removed"
    )
    func pingThenPrune() async throws {
        try await withTestServer(apps: [.test(pingInterval: 2)]) { server in
            let idle = try await server.connect()
            try await idle.joinPresence("presence-room", channelData: #"{"user_id":9}"#)
            _ = try await idle.nextText()
            let peer = try await server.connect()
            try await peer.joinPresence("presence-room", channelData: #"{"user_id":"peer"}"#)
            _ = try await peer.nextText()
            try await idle.expectText(
                PusherFrames.internalEvent(
                    "pusher_internal:member_added", inner: #"{"user_id":"peer"}"#, channel: "presence-room"))
            // The peer answers its own pings while the idle socket is pinged and pruned.
            let removed = PusherFrames.internalEvent(
                "pusher_internal:member_removed", inner: #"{"user_id":9}"#, channel: "presence-room")
            async let peerSawRemoval: Void = {
                while true {
                    let text = try await peer.nextText(timeout: .seconds(15))
                    if text == PusherFrames.ping {
                        try await peer.send(text: #"{"event":"pusher:pong","data":{}}"#)
                        continue
                    }
                    #expect(text == removed)
                    return
                }
            }()
            // Nothing before ping_interval has passed (asserting silence is the one bounded wait).
            await idle.expectNoFrame(within: .milliseconds(1500))
            try await idle.expectText(#"{"event":"pusher:ping"}"#, timeout: .seconds(6))
            try await idle.expectText(Self.pruned, timeout: .seconds(6))
            try await idle.expectClose(code: 4201, reason: "Pong reply not received in time")
            try await peerSawRemoval
        }
    }

    @Test("§15.36 a socket that sent a control frame is pinged with a ping frame; answering keeps it alive")
    func controlFramePings() async throws {
        try await withTestServer(apps: [.test(pingInterval: 2)]) { server in
            let client = try await server.connect()
            try await client.send(opcode: WebSocketFrame.ping, payload: [])
            let pong = try await client.nextFrame()
            #expect(pong.opcode == WebSocketFrame.pong && pong.payload.isEmpty, "\(pong)")
            for _ in 0..<2 {
                let ping = try await client.nextFrame(timeout: .seconds(8))
                #expect(ping.opcode == WebSocketFrame.ping && ping.fin && ping.payload.isEmpty, "\(ping)")
                try await client.send(opcode: WebSocketFrame.pong, payload: ping.payload)
            }
            let ping = try await client.nextFrame(timeout: .seconds(8))
            #expect(ping.opcode == WebSocketFrame.ping, "\(ping)")
            try await client.expectText(Self.pruned, timeout: .seconds(8))
            try await client.expectClose(code: 4201, reason: "Pong reply not received in time")
        }
    }

    @Test("§9 a pong control frame answering a text ping switches the connection to ping frames")
    func pongFrameSwitchesMode() async throws {
        try await withTestServer(apps: [.test(pingInterval: 2)]) { server in
            let client = try await server.connect()
            try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
            try await client.send(opcode: WebSocketFrame.pong, payload: [])
            let ping = try await client.nextFrame(timeout: .seconds(8))
            #expect(ping.opcode == WebSocketFrame.ping && ping.payload.isEmpty, "\(ping)")
        }
    }

    @Test("§15.37 any frame, even invalid JSON, resets idleness; never-subscribed sockets are pinged and pruned too")
    func anyFrameIsActivity() async throws {
        try await withTestServer(apps: [.test(pingInterval: 2)]) { server in
            let client = try await server.connect()
            try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
            try await client.send(text: "not json")
            try await client.expectError(4200, "Invalid message format")
            // The mark is cleared: the next thing is another ping, not the 4201 prune.
            try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
            try await client.send(text: #"{"event":"client-x","channel":"nowhere","data":{}}"#)
            try await client.expectError(4009, "The client is not a member of the specified channel.")
            try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
            try await client.send(opcode: WebSocketFrame.binary, payload: [0xFF])
            try await client.expectError(4200, "Invalid message format")
            try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
            try await client.expectText(Self.pruned, timeout: .seconds(8))
            try await client.expectClose(code: 4201, reason: "Pong reply not received in time")
        }
    }

    @Test("§9 pusher:pong answers the ping and keeps a subscribed socket alive")
    func pusherPongKeepsAlive() async throws {
        try await withTestServer(apps: [.test(pingInterval: 2)]) { server in
            let client = try await server.connect()
            try await client.subscribePublic("alive")
            for _ in 0..<3 {
                try await client.expectText(PusherFrames.ping, timeout: .seconds(8))
                try await client.send(text: #"{"event":"pusher:pong","data":{}}"#)
            }
            try await client.sync()
        }
    }
}
