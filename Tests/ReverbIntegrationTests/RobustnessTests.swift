import NIOCore
import Reverb
import Testing

@Suite("Bad input robustness")
struct RobustnessTests {
    static let garbageCount = 10_000
    static let whisperCount = 300

    @Test("10,000 garbage frames from one client while another keeps receiving every whisper")
    func garbageFlood() async throws {
        try await withTestServer(apps: [.test(maxMessageSize: 0)]) { server in
            let attacker = try await server.connect()
            let whisperer = try await server.connect()
            let listener = try await server.connect()
            try await whisperer.subscribePublic("room")
            try await listener.subscribePublic("room")

            async let flood: Void = {
                var generator = SystemRandomNumberGenerator()
                var batch: [UInt8] = []
                for index in 0..<Self.garbageCount {
                    let kind = index % 5
                    let payload: [UInt8]
                    switch kind {
                    case 0: payload = (0..<(index % 64)).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
                    case 1: payload = Array(#"{"event":"#.utf8) + Array(String(index).utf8)
                    case 2: payload = Array(#"{"event":"pusher:nope","data":{}}"#.utf8)
                    case 3: payload = Array(#"{"event":"client-x","channel":"room-not-mine","data":{}}"#.utf8)
                    default: payload = Array(#"[1,2,{"a":"#.utf8)
                    }
                    batch += WebSocketTestClient.encodeFrame(
                        opcode: kind == 4 ? WebSocketFrame.binary : WebSocketFrame.text, payload: payload)
                    if batch.count > 16_384 {
                        try await attacker.sendRaw(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                try await attacker.sendRaw(batch)
            }()
            async let whispers: Void = {
                for index in 0..<Self.whisperCount {
                    try await whisperer.send(text: #"{"event":"client-n","channel":"room","data":{"n":\#(index)}}"#)
                }
            }()
            try await flood
            try await whispers

            for index in 0..<Self.whisperCount {
                try await listener.expectText(#"{"event":"client-n","channel":"room","data":{"n":\#(index)}}"#)
            }
            // The attacker gets one error per garbage frame, then is still usable.
            var invalid = 0
            var notMember = 0
            for _ in 0..<Self.garbageCount {
                let text = try await attacker.nextText()
                if text == PusherFrames.error(4200, "Invalid message format") {
                    invalid += 1
                } else if text == PusherFrames.error(4009, "The client is not a member of the specified channel.") {
                    notMember += 1
                } else {
                    Issue.record("unexpected frame \(text)")
                    break
                }
            }
            #expect(notMember == Self.garbageCount / 5)
            #expect(invalid == Self.garbageCount - Self.garbageCount / 5)
            try await attacker.sync()
            try await listener.sync()
            try await whisperer.sync()
        }
    }

    @Test("an oversized frame closes 1009 without disturbing a client receiving events")
    func oversizeDoesNotDisturbOthers() async throws {
        try await withTestServer { server in
            let whisperer = try await server.connect()
            let listener = try await server.connect()
            try await whisperer.subscribePublic("room")
            try await listener.subscribePublic("room")
            let big = try await server.connect()
            try await whisperer.send(text: #"{"event":"client-a","channel":"room","data":{}}"#)
            try await big.send(opcode: WebSocketFrame.text, payload: Array(repeating: 0x20, count: 10_001))
            try await whisperer.send(text: #"{"event":"client-b","channel":"room","data":{}}"#)
            try await big.expectClose(code: 1009, reason: "Maximum message size exceeded")
            try await listener.expectText(#"{"event":"client-a","channel":"room","data":{}}"#)
            try await listener.expectText(#"{"event":"client-b","channel":"room","data":{}}"#)
        }
    }
}
