import NIOCore
import Reverb
import Testing

@Suite("Presence channels (protocol.md §5)")
struct PresenceTests {
    static func succeeded(_ channel: String, presence: String) -> String {
        PusherFrames.internalEvent(
            "pusher_internal:subscription_succeeded", inner: #"{"presence":"# + presence + "}", channel: channel)
    }

    static func added(_ channel: String, _ channelData: String) -> String {
        PusherFrames.internalEvent("pusher_internal:member_added", inner: channelData, channel: channel)
    }

    static func removed(_ channel: String, _ userID: String) -> String {
        PusherFrames.internalEvent(
            "pusher_internal:member_removed", inner: #"{"user_id":"# + userID + "}", channel: channel)
    }

    @Test("§15.18 presence subscribe gets the exact §5.2 frame; an integer user_id stays an integer")
    func presenceSubscribe() async throws {
        try await withTestServer { server in
            let first = try await server.connect()
            try await first.joinPresence(
                "presence-test-channel", channelData: #"{"user_id":1,"user_info":{"name":"Test User"}}"#)
            try await first.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":1,\"ids\":[1],\"hash\":{\"1\":{\"name\":\"Test User\"}}}}","channel":"presence-test-channel"}"#
            )
            let second = try await server.connect()
            try await second.joinPresence("presence-test-channel", channelData: #"{"user_id":"abc"}"#)
            try await second.expectText(
                Self.succeeded(
                    "presence-test-channel",
                    presence: #"{"count":2,"ids":[1,"abc"],"hash":{"1":{"name":"Test User"},"abc":null}}"#))
        }
    }

    @Test("§5.2 the spec's two-member example, byte for byte")
    func twoMemberExample() async throws {
        try await withTestServer { server in
            let ann = try await server.connect()
            try await ann.joinPresence("presence-room", channelData: #"{"user_id":1,"user_info":{"name":"Ann"}}"#)
            _ = try await ann.nextText()
            let other = try await server.connect()
            try await other.joinPresence("presence-room", channelData: #"{"user_id":"abc","user_info":null}"#)
            try await other.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":2,\"ids\":[1,\"abc\"],\"hash\":{\"1\":{\"name\":\"Ann\"},\"abc\":null}}}","channel":"presence-room"}"#
            )
        }
    }

    @Test(
        "§15.19 presence with a valid signature but no channel_data or no valid user_id gets 4200",
        arguments: [
            nil, "", #"{}"#, #"{"user_info":{"name":"x"}}"#, #"{"user_id":null}"#, #"{"user_id":""}"#,
            #"{"user_id":1.5}"#,
            #"{"user_id":true}"#, #"{"user_id":{}}"#, #"{"user_id":[1]}"#, "[]", "7",
        ])
    func presenceWithoutUserID(channelData: String?) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribe(
                "presence-x", auth: client.auth("presence-x", channelData: channelData), channelData: channelData)
            try await client.expectError(4200, "Invalid message format")
            try await client.sync()
        }
    }

    @Test("§15.19 presence with auth null (or missing) gets 4009 even without user_id")
    func presenceAuthNull() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(
                text:
                    #"{"event":"pusher:subscribe","data":{"auth":null,"channel_data":"{\"user_id\":1}","channel":"presence-x"}}"#
            )
            try await client.expectError(4009, "Connection is unauthorized")
            try await client.send(
                text: #"{"event":"pusher:subscribe","data":{"channel_data":"{}","channel":"presence-x"}}"#)
            try await client.expectError(4009, "Connection is unauthorized")
            try await client.sync()
        }
    }

    @Test("§15.20 a member without user_info is null in hash")
    func memberWithoutUserInfo() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.joinPresence("presence-x", channelData: #"{"user_id":"u1"}"#)
            try await client.expectText(
                Self.succeeded("presence-x", presence: #"{"count":1,"ids":["u1"],"hash":{"u1":null}}"#))
        }
    }

    @Test("§15.21 member_added reaches the other members, not the joiner; data is the joiner's channel_data bytes")
    func memberAdded() async throws {
        try await withTestServer { server in
            let first = try await server.connect()
            try await first.joinPresence(
                "presence-test-channel", channelData: #"{"user_id":1,"user_info":{"name":"Test User"}}"#)
            _ = try await first.nextText()
            let joinerData = #"{"user_id":2,"user_info":{"name":"Test User 2"}}"#
            let second = try await server.connect()
            try await second.joinPresence("presence-test-channel", channelData: joinerData)
            try await first.expectText(
                #"{"event":"pusher_internal:member_added","data":"{\"user_id\":2,\"user_info\":{\"name\":\"Test User 2\"}}","channel":"presence-test-channel"}"#
            )
            // The joiner gets only its succeeded frame.
            try await second.expectText(
                Self.succeeded(
                    "presence-test-channel",
                    presence: #"{"count":2,"ids":[1,2],"hash":{"1":{"name":"Test User"},"2":{"name":"Test User 2"}}}"#))
            try await second.sync()

            // Extra keys and whitespace travel as sent.
            let oddData = #"{ "user_id" : 3, "user_info": {"name": "Three"}, "extra": [true] }"#
            let third = try await server.connect()
            try await third.joinPresence("presence-test-channel", channelData: oddData)
            try await first.expectText(Self.added("presence-test-channel", oddData))
            try await second.expectText(Self.added("presence-test-channel", oddData))
            _ = try await third.nextText()
            try await third.sync()
            await first.expectNoFrame()
        }
    }

    @Test(
        "§15.22 a second socket of the same user (also 1 after \"1\") sends no member_added; count 1, one id",
        arguments: [
            (
                #"{"user_id":7,"user_info":{"n":1}}"#, #"{"user_id":7,"user_info":{"n":2}}"#,
                #"{"count":1,"ids":[7],"hash":{"7":{"n":1}}}"#
            ),
            (#"{"user_id":"1"}"#, #"{"user_id":1}"#, #"{"count":1,"ids":["1"],"hash":{"1":null}}"#),
            (#"{"user_id":1}"#, #"{"user_id":"1"}"#, #"{"count":1,"ids":[1],"hash":{"1":null}}"#),
        ])
    func sameUserTwice(firstData: String, secondData: String, presence: String) async throws {
        try await withTestServer { server in
            let observer = try await server.connect()
            try await observer.joinPresence("presence-x", channelData: #"{"user_id":"observer"}"#)
            _ = try await observer.nextText()
            let first = try await server.connect()
            try await first.joinPresence("presence-x", channelData: firstData)
            try await observer.expectText(Self.added("presence-x", firstData))
            _ = try await first.nextText()
            let second = try await server.connect()
            try await second.joinPresence("presence-x", channelData: secondData)
            let expected = presence.replacing(#"{"count":1,"ids":["#, with: #"{"count":2,"ids":["observer","#)
                .replacing(#""hash":{"#, with: #""hash":{"observer":null,"#)
            try await second.expectText(Self.succeeded("presence-x", presence: expected))
            await observer.expectNoFrame()
            await first.expectNoFrame(within: .milliseconds(50))
        }
    }

    @Test("§15.22 \"01\" and 1 are different users")
    func leadingZeroIsAnotherUser() async throws {
        try await withTestServer { server in
            let first = try await server.connect()
            try await first.joinPresence("presence-x", channelData: #"{"user_id":1}"#)
            _ = try await first.nextText()
            let second = try await server.connect()
            try await second.joinPresence("presence-x", channelData: #"{"user_id":"01"}"#)
            try await first.expectText(Self.added("presence-x", #"{"user_id":"01"}"#))
            try await second.expectText(
                Self.succeeded("presence-x", presence: #"{"count":2,"ids":[1,"01"],"hash":{"1":null,"01":null}}"#))
        }
    }

    @Test("§15.23 member_removed only when the user's last socket leaves, by unsubscribe or by closing")
    func memberRemoved() async throws {
        try await withTestServer { server in
            let observer = try await server.connect()
            try await observer.joinPresence("presence-test-channel", channelData: #"{"user_id":"obs"}"#)
            _ = try await observer.nextText()
            let a = try await server.connect()
            try await a.joinPresence("presence-test-channel", channelData: #"{"user_id":3}"#)
            _ = try await a.nextText()
            try await observer.expectText(Self.added("presence-test-channel", #"{"user_id":3}"#))
            let b = try await server.connect()
            try await b.joinPresence("presence-test-channel", channelData: #"{"user_id":3}"#)
            _ = try await b.nextText()

            try await a.unsubscribe("presence-test-channel")
            try await a.sync()
            await observer.expectNoFrame()

            await b.drop()
            try await observer.expectText(
                #"{"event":"pusher_internal:member_removed","data":"{\"user_id\":3}","channel":"presence-test-channel"}"#
            )

            let c = try await server.connect()
            try await c.joinPresence("presence-test-channel", channelData: #"{"user_id":"s"}"#)
            _ = try await c.nextText()
            try await observer.expectText(Self.added("presence-test-channel", #"{"user_id":"s"}"#))
            try await c.unsubscribe("presence-test-channel")
            try await observer.expectText(Self.removed("presence-test-channel", #""s""#))
            try await c.sync()

            let d = try await server.connect()
            try await d.joinPresence("presence-test-channel", channelData: #"{"user_id":"closer"}"#)
            _ = try await d.nextText()
            try await observer.expectText(Self.added("presence-test-channel", #"{"user_id":"closer"}"#))
            try await d.sendClose(code: 1000)
            try await observer.expectText(Self.removed("presence-test-channel", #""closer""#))
        }
    }

    @Test("§15.25 re-subscribe to a held presence channel: succeeded again, no member events")
    func resubscribeSameUser() async throws {
        try await withTestServer { server in
            let observer = try await server.connect()
            try await observer.joinPresence("presence-x", channelData: #"{"user_id":"obs"}"#)
            _ = try await observer.nextText()
            let client = try await server.connect()
            try await client.joinPresence("presence-x", channelData: #"{"user_id":5,"user_info":{"v":1}}"#)
            _ = try await client.nextText()
            try await observer.expectText(Self.added("presence-x", #"{"user_id":5,"user_info":{"v":1}}"#))
            try await client.joinPresence("presence-x", channelData: #"{"user_id":5,"user_info":{"v":2}}"#)
            try await client.expectText(
                Self.succeeded("presence-x", presence: #"{"count":2,"ids":["obs",5],"hash":{"obs":null,"5":{"v":2}}}"#))
            try await client.sync()
            await observer.expectNoFrame()
        }
    }

    @Test("§4.2 re-subscribe with another user_id: member_removed for the old, member_added for the new")
    func resubscribeOtherUser() async throws {
        try await withTestServer { server in
            let observer = try await server.connect()
            try await observer.joinPresence("presence-x", channelData: #"{"user_id":"obs"}"#)
            _ = try await observer.nextText()
            let client = try await server.connect()
            try await client.joinPresence("presence-x", channelData: #"{"user_id":5}"#)
            _ = try await client.nextText()
            try await observer.expectText(Self.added("presence-x", #"{"user_id":5}"#))
            try await client.joinPresence("presence-x", channelData: #"{"user_id":6}"#)
            try await observer.expectText(Self.removed("presence-x", "5"))
            try await observer.expectText(Self.added("presence-x", #"{"user_id":6}"#))
            try await client.expectText(
                Self.succeeded("presence-x", presence: #"{"count":2,"ids":["obs",6],"hash":{"obs":null,"6":null}}"#))
        }
    }
}
