import NIOCore
import Reverb
import Testing

@Suite("Presence cache channels without server events (protocol.md §8)")
struct PresenceCacheTests {
    @Test("§15.35 presence-cache: member events are never cached, a later subscriber gets cache_miss")
    func memberEventsNotCached() async throws {
        try await withTestServer { server in
            let channel = "presence-cache-x"
            let a = try await server.connect()
            try await a.joinPresence(channel, channelData: #"{"user_id":1}"#)
            _ = try await a.nextText()
            try await a.expectText(PusherFrames.cacheMiss(channel))
            let b = try await server.connect()
            try await b.joinPresence(channel, channelData: #"{"user_id":2}"#)
            _ = try await b.nextText()
            try await b.expectText(PusherFrames.cacheMiss(channel))
            try await a.expectText(
                PusherFrames.internalEvent("pusher_internal:member_added", inner: #"{"user_id":2}"#, channel: channel))
            await b.drop()
            try await a.expectText(
                PusherFrames.internalEvent("pusher_internal:member_removed", inner: #"{"user_id":2}"#, channel: channel)
            )
            let c = try await server.connect()
            try await c.joinPresence(channel, channelData: #"{"user_id":3}"#)
            try await c.expectText(
                PusherFrames.internalEvent(
                    "pusher_internal:subscription_succeeded",
                    inner: #"{"presence":{"count":2,"ids":[1,3],"hash":{"1":null,"3":null}}}"#,
                    channel: channel))
            try await c.expectText(PusherFrames.cacheMiss(channel))
        }
    }
}
