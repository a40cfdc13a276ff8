import NIOCore
import Testing

@testable import Reverb

@Suite("Presence and cache bookkeeping (protocol.md §5, §8)")
struct ChannelDirectoryTests {
    let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    func member(_ socket: String, _ data: String) throws -> PresenceMember {
        try #require(PresenceMember(socketID: socket, channelData: data))
    }

    @Test("member identity rules")
    func identity() throws {
        #expect(try member("1.1", #"{"user_id":1}"#).identity == "1")
        #expect(try member("1.1", #"{"user_id":"1"}"#).identity == "1")
        #expect(try member("1.1", #"{"user_id":"01"}"#).identity == "01")
        #expect(try member("1.1", #"{"user_id":1}"#).userInfo == .null)
        for bad in [
            #"{"user_id":null}"#, #"{"user_id":""}"#, #"{"user_id":1.5}"#, #"{"user_id":true}"#, #"{}"#, "5", #""x""#,
        ] {
            #expect(PresenceMember(socketID: "1.1", channelData: bad) == nil)
        }
    }

    @Test("one user with two sockets is announced once and removed once")
    func dedupe() throws {
        var state = ChannelDirectoryState()
        let a = state.subscribe(
            channel: "presence-r", socketID: "1.1",
            member: try member("1.1", #"{"user_id":1,"user_info":{"name":"Ann"}}"#), isCache: false, now: now)
        #expect(a.addedMember != nil)
        #expect(String(buffer: a.succeededData) == #"{"presence":{"count":1,"ids":[1],"hash":{"1":{"name":"Ann"}}}}"#)
        let b = state.subscribe(
            channel: "presence-r", socketID: "2.2", member: try member("2.2", #"{"user_id":"1"}"#), isCache: false,
            now: now)
        #expect(b.addedMember == nil)
        #expect(String(buffer: b.succeededData) == #"{"presence":{"count":1,"ids":[1],"hash":{"1":{"name":"Ann"}}}}"#)
        let c = state.subscribe(
            channel: "presence-r", socketID: "3.3", member: try member("3.3", #"{"user_id":"abc"}"#), isCache: false,
            now: now)
        #expect(
            String(buffer: c.succeededData)
                == #"{"presence":{"count":2,"ids":[1,"abc"],"hash":{"1":{"name":"Ann"},"abc":null}}}"#)
        #expect(state.unsubscribe(channel: "presence-r", socketID: "1.1", now: now).removedUserID == nil)
        #expect(state.unsubscribe(channel: "presence-r", socketID: "2.2", now: now).removedUserID == .string("1"))
        #expect(state.users("presence-r") == [.string("abc")])
    }

    @Test("re-subscribe with another user id leaves and joins")
    func resubscribe() throws {
        var state = ChannelDirectoryState()
        _ = state.subscribe(
            channel: "presence-r", socketID: "1.1", member: try member("1.1", #"{"user_id":1}"#), isCache: false,
            now: now)
        let same = state.subscribe(
            channel: "presence-r", socketID: "1.1", member: try member("1.1", #"{"user_id":1}"#), isCache: false,
            now: now)
        #expect(same.addedMember == nil && same.removedUserID == nil)
        let other = state.subscribe(
            channel: "presence-r", socketID: "1.1", member: try member("1.1", #"{"user_id":2}"#), isCache: false,
            now: now)
        #expect(other.removedUserID == .number("1"))
        #expect(other.addedMember?.identity == "2")
        #expect(state.subscriptionCount("presence-r") == 1)
    }

    @Test("cache survives 30 minutes after the channel empties")
    func cache() {
        var state = ChannelDirectoryState()
        let frame = OutboundFrame.build { $0.writeString(#"{"event":"e","data":"{}","channel":"cache-x"}"#) }
        state.storeCachedEvent(channel: "cache-x", frame: frame, now: now)
        let hit = state.subscribe(channel: "cache-x", socketID: "1.1", member: nil, isCache: true, now: now)
        #expect(hit.cachedFrame != nil)
        let occupiedTTL = state.cacheInfo(for: "cache-x", now: now + .hours(5))?.ttl
        #expect(occupiedTTL == 1800)
        let later = now + .minutes(10)
        _ = state.unsubscribe(channel: "cache-x", socketID: "1.1", now: later)
        let emptyTTL = state.cacheInfo(for: "cache-x", now: later + .minutes(10))?.ttl
        #expect(emptyTTL == 1200)
        let expired = state.cachedFrame(for: "cache-x", now: later + .minutes(31))
        #expect(expired == nil)
        let miss = state.subscribe(
            channel: "cache-x", socketID: "2.2", member: nil, isCache: true, now: later + .minutes(31))
        #expect(miss.cachedFrame == nil)
    }

    @Test("channels exist only while occupied, in creation order")
    func occupancy() {
        var state = ChannelDirectoryState()
        _ = state.subscribe(channel: "b", socketID: "1.1", member: nil, isCache: false, now: now)
        _ = state.subscribe(channel: "a", socketID: "1.1", member: nil, isCache: false, now: now)
        #expect(state.occupiedChannels() == ["b", "a"])
        _ = state.unsubscribe(channel: "b", socketID: "1.1", now: now)
        #expect(state.occupiedChannels() == ["a"])
        #expect(state.unsubscribe(channel: "zzz", socketID: "1.1", now: now).wasSubscribed == false)
    }
}

@Suite("Rate limiter (protocol.md §10)")
struct RateLimiterTests {
    @Test("fixed window: the 4th message in a 1 s window is refused, then a new window opens")
    func window() {
        var limiter = RateLimiter(maxAttempts: 3, decaySeconds: 1)
        let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
        let offsets: [Int64] = [0, 100, 200, 300, 999, 1000, 1500]
        var results: [Bool] = []
        for offset in offsets { results.append(limiter.admit(now: start + .milliseconds(offset))) }
        #expect(results == [true, true, true, false, false, true, true])
    }
}

@Suite("Origins (protocol.md §1.3)")
struct OriginPolicyTests {
    @Test(
        "spec examples",
        arguments: [
            (["laravel.com"], "http://laravel.com", true), (["laravel.com"], "https://laravel.com:8443", true),
            (["laravel.com"], "http://sub.laravel.com", false), (["laravel.com"], "http://localhost", false),
            (["*.laravel.com"], "http://laravel.com", false),
            (["localhost", "*.localhost"], "http://sub.localhost", true),
            (["*"], "anything", true), (["a*c"], "http://abbbc", true), (["a*c"], "http://abbbd", false),
        ])
    func examples(_ patterns: [String], _ origin: String, _ allowed: Bool) {
        #expect(OriginPolicy.allows(origin: origin, patterns: patterns) == allowed)
    }

    @Test("missing origin refused unless *")
    func missing() {
        #expect(!OriginPolicy.allows(origin: nil, patterns: ["laravel.com"]))
        #expect(OriginPolicy.allows(origin: nil, patterns: ["*"]))
    }
}
