import NIOCore
import Reverb
import Testing

@Suite("Server events through the HTTP API (protocol.md §6, §8)")
struct HTTPEventTests {
    static let testEvent = #"{"event":"App\\Events\\TestEvent","data":"{\"foo\":\"bar\"}","channel":"CHANNEL"}"#

    static func testEvent(_ channel: String) -> String {
        testEvent.replacing("CHANNEL", with: channel)
    }

    @Test(
        "§15.13 a refused subscription creates no channel (HTTP API channel list)",
        arguments: SubscriptionTests.BadAuth.allCases)
    func refusedSubscriptionLeavesNoChannel(badAuth: SubscriptionTests.BadAuth) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(
                text: SubscriptionTests.subscribeMessage(channel: "private-orders.1", badAuth: badAuth, client: client))
            try await client.expectError(4009, "Connection is unauthorized")
            #expect(try await server.channelsBody() == #"{"channels":{}}"#)
            let info = try await server.api("GET", "/apps/123456/channels/private-orders.1")
            #expect(info.bodyText == #"{"occupied":false}"#, "\(info)")
            try await client.subscribePublic("still-usable")
            #expect(try await server.channelsBody() == #"{"channels":{"still-usable":{}}}"#)
        }
    }

    @Test("§15.15 a 4200 subscription creates no channel; a failed re-subscribe keeps the old one")
    func failedSubscribeKeepsState() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: #"{"event":"pusher:subscribe","data":{"auth":[],"channel":"public-x"}}"#)
            try await client.expectError(4200, "Invalid message format")
            try await client.joinPresence("presence-x", channelData: #"{"user_info":{}}"#)
            try await client.expectError(4200, "Invalid message format")
            #expect(try await server.channelsBody() == #"{"channels":{}}"#)
            try await client.subscribePrivate("private-again")
            try await client.subscribe("private-again", auth: "reverb-key:bad")
            try await client.expectError(4009, "Connection is unauthorized")
            #expect(try await server.channelsBody() == #"{"channels":{"private-again":{}}}"#)
        }
    }

    @Test("§15.26 an HTTP event reaches every subscriber with the exact §6 frame; the socket_id socket is skipped")
    func httpEventFanOut() async throws {
        try await withTestServer { server in
            var subscribers: [WebSocketTestClient] = []
            for _ in 0..<5 {
                let client = try await server.connect()
                try await client.subscribePublic("test-channel")
                subscribers.append(client)
            }
            let bystander = try await server.connect()
            try await bystander.subscribePublic("other-channel")
            try await server.publish(channels: ["test-channel"])
            for client in subscribers {
                try await client.expectText(
                    #"{"event":"App\\Events\\TestEvent","data":"{\"foo\":\"bar\"}","channel":"test-channel"}"#)
            }
            try await server.publish(
                event: "NewEvent", channels: ["test-channel", "other-channel"], data: #"{"some":"data"}"#,
                socketID: subscribers[0].socketID)
            for client in subscribers.dropFirst() {
                try await client.expectText(
                    #"{"event":"NewEvent","data":"{\"some\":\"data\"}","channel":"test-channel"}"#)
            }
            try await bystander.expectText(
                #"{"event":"NewEvent","data":"{\"some\":\"data\"}","channel":"other-channel"}"#)
            try await subscribers[0].sync()
            await subscribers[0].expectNoFrame()
        }
    }

    @Test("§6 batch_events frames use the key order event, channel, data")
    func batchEvents() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic("test-channel")
            let response = try await server.api(
                "POST", "/apps/123456/batch_events",
                body:
                    #"{"batch":[{"name":"NewEvent","channel":"test-channel","data":"{\"some\":\"data\"}"},{"name":"Second","channel":"test-channel","data":"x"}]}"#
            )
            #expect(response.status == 200, "\(response)")
            try await client.expectText(#"{"event":"NewEvent","channel":"test-channel","data":"{\"some\":\"data\"}"}"#)
            try await client.expectText(#"{"event":"Second","channel":"test-channel","data":"x"}"#)
        }
    }

    @Test("§15.24 after unsubscribing, HTTP events are no longer delivered")
    func unsubscribedGetsNoHTTPEvents() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic("a")
            try await client.subscribePublic("b")
            try await client.unsubscribe("a")
            try await client.sync()
            try await server.publish(channels: ["a"])
            try await server.publish(channels: ["b"])
            try await client.expectText(Self.testEvent("b"))
        }
    }

    @Test(
        "§15.34 cache channels: cache_miss when empty; the last HTTP event (even unobserved) is replayed",
        arguments: [
            "cache-test-channel", "private-cache-x", "private-encrypted-cache-x", "presence-cache-x",
        ])
    func cacheChannels(channel: String) async throws {
        try await withTestServer { server in
            func subscribe(_ client: WebSocketTestClient, userID: Int) async throws {
                if channel.hasPrefix("presence-") {
                    try await client.joinPresence(channel, channelData: #"{"user_id":\#(userID)}"#)
                    try await client.expectText(
                        PusherFrames.internalEvent(
                            "pusher_internal:subscription_succeeded",
                            inner: #"{"presence":{"count":1,"ids":[\#(userID)],"hash":{"\#(userID)":null}}}"#,
                            channel: channel))
                } else if channel.hasPrefix("private-") {
                    try await client.subscribePrivate(channel)
                } else {
                    try await client.subscribePublic(channel)
                }
            }
            let first = try await server.connect()
            try await subscribe(first, userID: 1)
            try await first.expectText(#"{"event":"pusher:cache_miss","channel":"\#(channel)"}"#)
            await first.drop()

            // Published while nobody (or nobody yet) is subscribed.
            try await server.publish(channels: [channel])
            let second = try await server.connect()
            try await subscribe(second, userID: 2)
            try await second.expectText(Self.testEvent(channel))

            try await server.publish(event: "Later", channels: [channel], data: "2")
            try await second.expectText(#"{"event":"Later","data":"2","channel":"\#(channel)"}"#)
            let third = try await server.connect()
            let expectedCount = channel.hasPrefix("presence-") ? 2 : 0
            if expectedCount == 2 {
                try await third.joinPresence(channel, channelData: #"{"user_id":3}"#)
                _ = try await third.nextText()
            } else {
                try await subscribe(third, userID: 3)
            }
            try await third.expectText(#"{"event":"Later","data":"2","channel":"\#(channel)"}"#)
            try await third.sync()
        }
    }

    @Test("§15.34 the cache example of §8, byte for byte")
    func cacheExample() async throws {
        try await withTestServer { server in
            try await server.publish(channels: ["cache-test-channel"])
            let client = try await server.connect()
            try await client.send(
                text: #"{"event":"pusher:subscribe","data":{"auth":"","channel":"cache-test-channel"}}"#)
            try await client.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"cache-test-channel"}"#)
            try await client.expectText(
                #"{"event":"App\\Events\\TestEvent","data":"{\"foo\":\"bar\"}","channel":"cache-test-channel"}"#)
        }
    }

    @Test("§15.35 presence-cache: member_removed is never replayed, the HTTP event is")
    func presenceCacheNeverReplaysMemberRemoved() async throws {
        try await withTestServer { server in
            let channel = "presence-cache-room"
            let a = try await server.connect()
            try await a.joinPresence(channel, channelData: #"{"user_id":1}"#)
            _ = try await a.nextText()
            try await a.expectText(PusherFrames.cacheMiss(channel))
            try await server.publish(channels: [channel])
            try await a.expectText(Self.testEvent(channel))
            let b = try await server.connect()
            try await b.joinPresence(channel, channelData: #"{"user_id":2}"#)
            _ = try await b.nextText()
            try await b.expectText(Self.testEvent(channel))
            try await a.expectText(
                PusherFrames.internalEvent("pusher_internal:member_added", inner: #"{"user_id":2}"#, channel: channel))
            try await b.unsubscribe(channel)
            try await a.expectText(
                PusherFrames.internalEvent("pusher_internal:member_removed", inner: #"{"user_id":2}"#, channel: channel)
            )
            let c = try await server.connect()
            try await c.joinPresence(channel, channelData: #"{"user_id":3}"#)
            _ = try await c.nextText()
            try await c.expectText(Self.testEvent(channel))
            try await c.sync()
        }
    }
}
