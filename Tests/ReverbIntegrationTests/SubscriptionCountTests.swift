import NIOCore
import Reverb
import Testing

@Suite("subscription_count and presence limits (config.md §4, protocol.md §5.1)")
struct SubscriptionCountTests {
    static func count(_ channel: String, _ count: Int) -> String {
        #"{"event":"pusher_internal:subscription_count","data":"{\"subscription_count\":\#(count)}","channel":"\#(channel)"}"#
    }

    @Test("on: subscribers get the count when it changes, at most once per channel per 5 s, the latest number")
    func reported() async throws {
        try await withTestServer(apps: [.test(subscriptionCount: true)]) { server in
            let a = try await server.connect()
            try await a.subscribePublic("chat")
            try await a.expectText(Self.count("chat", 1))
            let start = NIODeadline.now()
            let b = try await server.connect()
            try await b.subscribePublic("chat")
            let c = try await server.connect()
            try await c.subscribePublic("chat")
            try await c.unsubscribe("chat")
            // Within the window nothing more; then one report with the count as it stands (2).
            try await a.expectText(Self.count("chat", 2), timeout: .seconds(8))
            #expect(NIODeadline.now() - start >= .milliseconds(4_500), "reported before the 5 s window ended")
            try await b.expectText(Self.count("chat", 2), timeout: .seconds(1))
            try await a.sync()
        }
    }

    @Test("off (the default) and on presence channels: no subscription_count")
    func notReported() async throws {
        try await withTestServer(apps: [.test(subscriptionCount: false)]) { server in
            let a = try await server.connect()
            try await a.subscribePublic("chat")
            await a.expectNoFrame(within: .milliseconds(200))
        }
        try await withTestServer(apps: [.test(subscriptionCount: true)]) { server in
            let a = try await server.connect()
            try await a.joinPresence("presence-p", channelData: #"{"user_id":1}"#)
            _ = try await a.nextText()
            await a.expectNoFrame(within: .milliseconds(200))
        }
    }

    @Test("max_presence_members / max_presence_member_size: 4100 naming the limit, no member event, socket open")
    func presenceLimits() async throws {
        let app = Application.test(presenceLimits: .init(maxMembers: 1, maxMemberSize: 30))
        try await withTestServer(apps: [app]) { server in
            let first = try await server.connect()
            try await first.joinPresence("presence-room", channelData: #"{"user_id":1}"#)
            _ = try await first.nextText()
            let second = try await server.connect()
            try await second.joinPresence("presence-room", channelData: #"{"user_id":2}"#)
            try await second.expectError(4100, "Presence channel member limit (1) reached")
            try await second.joinPresence("presence-other", channelData: #"{"user_id":2,"user_info":"far too long"}"#)
            try await second.expectError(4100, "Presence member data size limit (30 bytes) exceeded")
            // The same user again is no new member.
            try await second.joinPresence("presence-room", channelData: #"{"user_id":1}"#)
            try await second.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":1,\"ids\":[1],\"hash\":{\"1\":null}}}","channel":"presence-room"}"#
            )
            await first.expectNoFrame(within: .milliseconds(200))
            try await second.sync()
        }
    }
}
