import NIOCore
import Testing

@testable import Reverb

@Suite("Presence and cache bookkeeping (protocol.md §5, §8; scaling.md §4.6, §4.7)")
struct ChannelDirectoryTests {
    let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    func member(_ data: String) throws -> PresenceMember {
        try #require(PresenceMember(channelData: data))
    }

    func added(_ changes: DirectoryChanges) -> [String] {
        changes.members.compactMap { if case .added(_, let member, _) = $0 { member.identity } else { nil } }
    }

    func removed(_ changes: DirectoryChanges) -> [JSONValue] {
        changes.members.compactMap { if case .removed(_, let userID) = $0 { userID } else { nil } }
    }

    @discardableResult
    func join(_ state: inout ChannelDirectoryState, _ socket: String, _ data: String, channel: String = "presence-r")
        throws -> SubscribeOutcome
    {
        state.subscribe(channel: channel, socketID: socket, member: try member(data), isCache: false, now: now)
    }

    @Test("member identity rules; user_info kept compact")
    func identity() throws {
        #expect(try member(#"{"user_id":1}"#).identity == "1")
        #expect(try member(#"{"user_id":"1"}"#).identity == "1")
        #expect(try member(#"{"user_id":"01"}"#).identity == "01")
        #expect(String(buffer: try member(#"{"user_id":1}"#).userInfo) == "null")
        #expect(String(buffer: try member(#"{"user_id":1, "user_info": {"a": [1, 2]}}"#).userInfo) == #"{"a":[1,2]}"#)
        for bad in [
            #"{"user_id":null}"#, #"{"user_id":""}"#, #"{"user_id":1.5}"#, #"{"user_id":true}"#, #"{}"#, "5", #""x""#,
        ] {
            #expect(PresenceMember(channelData: bad) == nil)
        }
    }

    @Test("one user with two sockets is announced once and removed once")
    func dedupe() throws {
        var state = ChannelDirectoryState()
        let a = try join(&state, "1.1", #"{"user_id":1,"user_info":{"name":"Ann"}}"#)
        #expect(added(a.changes) == ["1"])
        #expect(a.changes.announcements.count == 1)
        #expect(String(buffer: a.succeededData) == #"{"presence":{"count":1,"ids":[1],"hash":{"1":{"name":"Ann"}}}}"#)
        let b = try join(&state, "2.2", #"{"user_id":"1"}"#)
        #expect(added(b.changes).isEmpty && b.changes.announcements.isEmpty)
        #expect(String(buffer: b.succeededData) == #"{"presence":{"count":1,"ids":[1],"hash":{"1":{"name":"Ann"}}}}"#)
        let c = try join(&state, "3.3", #"{"user_id":"abc"}"#)
        #expect(
            String(buffer: c.succeededData)
                == #"{"presence":{"count":2,"ids":[1,"abc"],"hash":{"1":{"name":"Ann"},"abc":null}}}"#)
        let first = state.unsubscribe(channel: "presence-r", socketID: "1.1", now: now)
        #expect(first.wasSubscribed && first.changes.members.isEmpty && first.changes.announcements.isEmpty)
        let second = state.unsubscribe(channel: "presence-r", socketID: "2.2", now: now)
        #expect(removed(second.changes) == [.number("1")])
        #expect(second.changes.announcements == [.leave(channel: "presence-r", userID: .string("1"))])
        #expect(state.users("presence-r") == [.string("abc")])
    }

    @Test("re-subscribe with another user id leaves and joins")
    func resubscribe() throws {
        var state = ChannelDirectoryState()
        try join(&state, "1.1", #"{"user_id":1}"#)
        let same = try join(&state, "1.1", #"{"user_id":1}"#)
        #expect(same.changes.isEmpty && !same.countChanged)
        let other = try join(&state, "1.1", #"{"user_id":2}"#)
        #expect(removed(other.changes) == [.number("1")])
        #expect(added(other.changes) == ["2"])
        #expect(state.subscriptionCount("presence-r") == 1)
    }

    @Test("a user on another node: local join of the same user is not announced; last leave anywhere removes")
    func remoteMembers() throws {
        var state = ChannelDirectoryState()
        let remote = state.remoteJoin(
            channel: "presence-r", member: try member(#"{"user_id":7,"user_info":"b"}"#), node: "b")
        #expect(added(remote) == ["7"])
        let local = try join(&state, "1.1", #"{"user_id":"7","user_info":"a"}"#)
        #expect(added(local.changes).isEmpty)
        // Still announced to the bus: this node now holds the user too.
        #expect(local.changes.announcements.count == 1)
        // The entry keeps the first join's data.
        #expect(String(buffer: local.succeededData) == #"{"presence":{"count":1,"ids":[7],"hash":{"7":"b"}}}"#)
        #expect(state.remoteLeave(channel: "presence-r", identity: "7", node: "b").members.isEmpty)
        let last = state.unsubscribe(channel: "presence-r", socketID: "1.1", now: now)
        #expect(removed(last.changes) == [.number("7")])
        #expect(state.rosters.isEmpty)
    }

    @Test("sync_state replaces what is attributed to the sender; a dead node's members go")
    func replaceAndRemoveNode() throws {
        var state = ChannelDirectoryState()
        _ = state.remoteJoin(channel: "presence-r", member: try member(#"{"user_id":1}"#), node: "b")
        _ = state.remoteJoin(channel: "presence-r", member: try member(#"{"user_id":2}"#), node: "b")
        _ = state.setRemoteCount(channel: "chat", node: "b", count: 3)
        try join(&state, "1.1", #"{"user_id":2}"#)
        let changes = state.replace(
            node: "b", presence: [("presence-r", [try member(#"{"user_id":2}"#), try member(#"{"user_id":3}"#)])],
            counts: [("presence-r", 2)])
        #expect(removed(changes) == [.number("1")])
        #expect(added(changes) == ["3"])
        #expect(state.users("presence-r") == [.number(("2")), .number("3")])
        #expect(state.subscriptionCount("chat") == 0)
        #expect(state.subscriptionCount("presence-r") == 3)
        let gone = state.removeNode("b")
        #expect(removed(gone) == [.number("3")])
        #expect(state.users("presence-r") == [.number("2")])
        #expect(state.occupiedChannels() == ["presence-r"])
    }

    @Test("cluster-wide counts and occupied channels; local answers stay local")
    func counts() {
        var state = ChannelDirectoryState()
        _ = state.subscribe(channel: "b", socketID: "1.1", member: nil, isCache: false, now: now)
        #expect(state.setRemoteCount(channel: "c", node: "n1", count: 2).countsChanged == ["c"])
        #expect(state.setRemoteCount(channel: "c", node: "n1", count: 2).countsChanged.isEmpty)
        _ = state.setRemoteCount(channel: "b", node: "n2", count: 4)
        #expect(state.occupiedChannels() == ["b", "c"])
        #expect(state.localOccupiedChannels() == ["b"])
        #expect(state.subscriptionCount("b") == 5 && state.localSubscriptionCount("b") == 1)
        _ = state.setRemoteCount(channel: "c", node: "n1", count: 0)
        #expect(state.occupiedChannels() == ["b"])
    }

    @Test("caps: other nodes cannot make this node hold more than the limits; refusals are counted")
    func caps() throws {
        var limits = ChannelDirectoryState.Limits()
        limits.remoteMembers = 3
        limits.remoteChannels = 2
        limits.remoteMemberBytes = 1_000
        var state = ChannelDirectoryState(limits: limits)
        for i in 0..<5 {
            _ = state.remoteJoin(channel: "presence-f", member: try member(#"{"user_id":\#(i)}"#), node: "fake")
        }
        #expect(state.userCount("presence-f") == 3)
        for name in ["x", "y", "z"] { _ = state.setRemoteCount(channel: name, node: "fake", count: 1) }
        #expect(state.occupiedChannels().count == 2)
        #expect(state.refusedAtCaps == 3)
        _ = state.removeNode("fake")
        #expect(state.userCount("presence-f") == 0 && state.occupiedChannels().isEmpty)
        // Freed room is usable again; a big member is refused by bytes.
        let big = String(repeating: "x", count: 2_000)
        _ = state.remoteJoin(
            channel: "presence-f", member: try member(#"{"user_id":1,"user_info":"\#(big)"}"#), node: "n")
        #expect(state.userCount("presence-f") == 0 && state.refusedAtCaps == 4)
        _ = state.remoteJoin(channel: "presence-f", member: try member(#"{"user_id":1}"#), node: "n")
        #expect(state.userCount("presence-f") == 1)
    }

    @Test("presence limits: members and member size, cluster-wide, 4100 naming the limit, nothing changes")
    func presenceLimits() throws {
        var state = ChannelDirectoryState()
        let limits = Application.PresenceLimits(maxMembers: 2, maxMemberSize: 40)
        _ = state.remoteJoin(channel: "presence-r", member: try member(#"{"user_id":1}"#), node: "b")
        func subscribe(_ socket: String, _ data: String) throws -> SubscribeOutcome {
            state.subscribe(
                channel: "presence-r", socketID: socket, member: try member(data), isCache: false,
                presenceLimits: limits, now: now)
        }
        #expect(try subscribe("1.1", #"{"user_id":2}"#).refused == nil)
        let full = try subscribe("2.2", #"{"user_id":3}"#)
        #expect(full.refused == PusherError(code: 4100, message: "Presence channel member limit (2) reached"))
        #expect(full.changes.isEmpty && state.localSubscriptionCount("presence-r") == 1)
        // A user already in the channel may open another connection.
        #expect(try subscribe("3.3", #"{"user_id":1}"#).refused == nil)
        let big = try subscribe("4.4", #"{"user_id":1,"user_info":"0123456789012345678901234567890"}"#)
        #expect(big.refused == PusherError(code: 4100, message: "Presence member data size limit (40 bytes) exceeded"))
    }

    @Test("presence data is built once per change and follows creation order after removals")
    func rosterOrder() throws {
        var roster = PresenceRoster()
        for i in 0..<100 { _ = roster.add(try member(#"{"user_id":\#(i)}"#), node: "") }
        for i in stride(from: 0, to: 100, by: 2) { _ = roster.remove(String(i), node: "") }
        _ = roster.add(try member(#"{"user_id":0}"#), node: "b")
        let ids = roster.members().map(\.identity)
        #expect(ids == stride(from: 1, to: 100, by: 2).map(String.init) + ["0"])
        let data = roster.presenceData()
        #expect(roster.presenceData() == data)
        #expect(String(buffer: data).hasPrefix(#"{"presence":{"count":51,"ids":[1,3,"#))
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

    @Test("at most `cachedChannels` cached events; the least recently written is evicted")
    func cacheEviction() {
        var limits = ChannelDirectoryState.Limits()
        limits.cachedChannels = 3
        var state = ChannelDirectoryState(limits: limits)
        let frame = OutboundFrame.build { $0.writeString("{}") }
        for name in ["a", "b", "c", "a", "d"] {
            state.storeCachedEvent(channel: "cache-\(name)", frame: frame, now: now)
        }
        #expect(state.cachedChannelCount == 3)
        #expect(state.cachedFrame(for: "cache-b", now: now) == nil)
        for name in ["a", "c", "d"] { #expect(state.cachedFrame(for: "cache-\(name)", now: now) != nil) }
        for i in 0..<5_000 { state.storeCachedEvent(channel: "cache-\(i % 7)", frame: frame, now: now) }
        #expect(state.cachedChannelCount == 3)
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
