import NIOCore
import Reverb
import Testing

@Suite("Client events (protocol.md §7)")
struct ClientEventTests {
    @Test("§15.27 members mode: exact §7.2 frame at the others, never the sender; user_id added on presence")
    func membersMode() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            let outsider = try await server.connect()
            try await sender.subscribePublic("test-channel")
            try await peer.subscribePublic("test-channel")
            try await sender.send(
                text: #"{"event":"client-start-typing","data":{"id":123,"name":"Joe Dixon"},"channel":"test-channel"}"#)
            try await peer.expectText(
                #"{"event":"client-start-typing","channel":"test-channel","data":{"id":123,"name":"Joe Dixon"}}"#)
            try await sender.sync()

            try await sender.joinPresence("presence-chat.1", channelData: #"{"user_id":1,"user_info":{"name":"Ann"}}"#)
            _ = try await sender.nextText()
            try await peer.joinPresence("presence-chat.1", channelData: #"{"user_id":"two"}"#)
            _ = try await peer.nextText()
            try await sender.expectText(
                PusherFrames.internalEvent(
                    "pusher_internal:member_added", inner: #"{"user_id":"two"}"#, channel: "presence-chat.1"))
            try await sender.send(text: #"{"event":"client-typing","data":{"name":"bob"},"channel":"presence-chat.1"}"#)
            try await peer.expectText(
                #"{"event":"client-typing","channel":"presence-chat.1","data":{"name":"bob"},"user_id":1}"#)
            try await peer.send(text: #"{"event":"client-typing","data":{"name":"two"},"channel":"presence-chat.1"}"#)
            try await sender.expectText(
                #"{"event":"client-typing","channel":"presence-chat.1","data":{"name":"two"},"user_id":"two"}"#)
            try await sender.sync()
            try await peer.sync()
            await outsider.expectNoFrame()
        }
    }

    @Test("§7.2 private channel with signed channel_data adds its user_id; the sender's other socket receives")
    func privateWithChannelData() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let otherSocketOfSender = try await server.connect()
            let channelData = #"{"user_id":42}"#
            try await sender.subscribe(
                "private-room", auth: sender.auth("private-room", channelData: channelData), channelData: channelData)
            try await sender.expectSubscribed("private-room")
            try await otherSocketOfSender.subscribe(
                "private-room", auth: otherSocketOfSender.auth("private-room", channelData: channelData),
                channelData: channelData)
            try await otherSocketOfSender.expectSubscribed("private-room")
            try await sender.send(text: #"{"event":"client-x","channel":"private-room","data":[1]}"#)
            try await otherSocketOfSender.expectText(
                #"{"event":"client-x","channel":"private-room","data":[1],"user_id":42}"#)
            try await sender.sync()
        }
    }

    @Test("§15.28 members mode: a non-subscriber's whisper gets the exact 4009; nobody receives it")
    func membersModeNonSubscriber() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            try await peer.subscribePublic("test-channel")
            try await sender.send(text: #"{"event":"client-typing","data":{},"channel":"test-channel"}"#)
            try await sender.expectText(
                #"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"The client is not a member of the specified channel.\"}"}"#
            )
            try await sender.sync()
            await peer.expectNoFrame()
        }
    }

    @Test("§15.29 mode none: exact 4301 client messaging frame, even for members")
    func noneMode() async throws {
        try await withTestServer(apps: [.test(clientEvents: .none)]) { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            try await sender.subscribePublic("test-channel")
            try await peer.subscribePublic("test-channel")
            try await sender.send(text: #"{"event":"client-typing","data":{},"channel":"test-channel"}"#)
            try await sender.expectText(
                #"{"event":"pusher:error","data":"{\"code\":4301,\"message\":\"The app does not have client messaging enabled.\"}"}"#
            )
            try await sender.sync()
            await peer.expectNoFrame()
        }
    }

    @Test("§15.30 all mode: a non-subscriber's whisper is delivered; client user_id and channels are dropped")
    func allMode() async throws {
        try await withTestServer(apps: [.test(clientEvents: .all)]) { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            let other = try await server.connect()
            try await peer.subscribePublic("test-channel")
            try await other.subscribePublic("other-channel")
            try await sender.send(
                text:
                    #"{"event":"client-typing","data":{"a":1},"channel":"test-channel","user_id":99,"channels":["other-channel"],"socket_id":"1.1"}"#
            )
            try await peer.expectText(#"{"event":"client-typing","channel":"test-channel","data":{"a":1}}"#)
            try await sender.sync()
            await other.expectNoFrame()
            // Any channel type, unsubscribed sender: still no user_id.
            try await peer.subscribePrivate("private-z")
            try await sender.send(text: #"{"event":"client-p","channel":"private-z","user_id":1}"#)
            try await peer.expectText(#"{"event":"client-p","channel":"private-z","data":null}"#)
        }
    }

    @Test("§15.33 channel_data on a public channel is ignored: whispers there carry no user_id")
    func publicChannelDataIgnored() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            let peer = try await server.connect()
            try await sender.subscribe("test-channel", channelData: #"{"user_id":"spoofed"}"#)
            try await sender.expectSubscribed("test-channel")
            try await peer.subscribePublic("test-channel")
            try await sender.send(text: #"{"event":"client-x","channel":"test-channel","data":{}}"#)
            try await peer.expectText(#"{"event":"client-x","channel":"test-channel","data":{}}"#)
            try await sender.subscribe("cache-c", channelData: #"{"user_id":"spoofed"}"#)
            try await sender.expectSubscribed("cache-c")
            try await sender.expectText(PusherFrames.cacheMiss("cache-c"))
            try await peer.subscribePublic("cache-c")
            try await peer.expectText(PusherFrames.cacheMiss("cache-c"))
            try await sender.send(text: #"{"event":"client-y","channel":"cache-c","data":{}}"#)
            try await peer.expectText(#"{"event":"client-y","channel":"cache-c","data":{}}"#)
        }
    }

    @Test("§7 / §8 a whisper on a cache channel becomes its cached event")
    func whisperIsCached() async throws {
        try await withTestServer { server in
            let sender = try await server.connect()
            try await sender.subscribePublic("cache-w")
            try await sender.expectText(PusherFrames.cacheMiss("cache-w"))
            try await sender.send(text: #"{"event":"client-w","channel":"cache-w","data":{"k":"v"}}"#)
            try await sender.sync()
            let late = try await server.connect()
            try await late.subscribePublic("cache-w")
            try await late.expectText(#"{"event":"client-w","channel":"cache-w","data":{"k":"v"}}"#)
        }
    }
}
