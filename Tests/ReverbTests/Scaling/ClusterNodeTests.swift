import Logging
import NIOCore
import NIOPosix
import ReverbRedis
import Testing

@testable import Reverb

/// What a node does with each bus message (`scaling.md` §4.6–§4.9), without Redis: the node is
/// never run, so its publisher only queues, and messages are handed to `receive` directly.
@Suite("Cluster node state from bus messages (scaling.md §4.6–§4.9)")
struct ClusterNodeTests {
    static let peer = "00000000000000bb"

    struct Harness {
        let node: ClusterNode
        let app: AppContext

        init(limits: ChannelDirectoryState.Limits = .init()) throws {
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let fanout = Fanout(eventLoops: [loop], logger: Logger(label: "test"))
            let apps = AppRegistry([Application(id: "1", key: "k", secret: "s")], fanout: fanout, limits: limits)
            var scaling = ScalingConfiguration()
            scaling.enabled = true
            node = ClusterNode(
                apps: apps, fanout: fanout,
                factory: try RedisClientFactory(settings: RedisSettings(url: "redis://127.0.0.1:1")),
                scaling: scaling, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
            app = apps.all[0]
        }

        func receive(_ text: String) { node.receive(ByteBuffer(string: text)) }

        func join(_ user: String, node sender: String = ClusterNodeTests.peer, channel: String = "presence-r") {
            receive(
                #"{"v":1,"type":"presence_join","node":"\#(sender)","app":"1","channel":"\#(channel)","user_id":"\#(user)","channel_data":"{\"user_id\":\"\#(user)\"}"}"#
            )
        }

        func users(_ channel: String = "presence-r") -> [JSONValue] {
            app.directory.withState { $0.users(channel) }
        }

        func count(_ channel: String) -> Int {
            app.directory.withState { $0.subscriptionCount(channel) }
        }
    }

    @Test("presence_join / presence_leave from a peer add and remove its members; malformed ones are dropped")
    func joinAndLeave() throws {
        let harness = try Harness()
        harness.join("7")
        harness.join("8")
        #expect(harness.users() == [.string("7"), .string("8")])
        harness.receive(
            #"{"v":1,"type":"presence_leave","node":"\#(Self.peer)","app":"1","channel":"presence-r","user_id":"7"}"#)
        #expect(harness.users() == [.string("8")])
        // user_id that does not match channel_data, a non-presence channel, no channel_data.
        harness.receive(
            #"{"v":1,"type":"presence_join","node":"\#(Self.peer)","app":"1","channel":"presence-r","user_id":"9","channel_data":"{\"user_id\":1}"}"#
        )
        harness.receive(
            #"{"v":1,"type":"presence_join","node":"\#(Self.peer)","app":"1","channel":"chat","user_id":"9","channel_data":"{\"user_id\":9}"}"#
        )
        harness.receive(#"{"v":1,"type":"presence_join","node":"\#(Self.peer)","app":"1","channel":"presence-r"}"#)
        #expect(harness.users() == [.string("8")])
        #expect(harness.node.droppedMessageCount == 3)
    }

    @Test("occupancy and sync_state replace the sender's counts and members; node_leave drops them for good")
    func syncAndLeave() throws {
        let harness = try Harness()
        harness.join("1")
        harness.receive(#"{"v":1,"type":"occupancy","node":"\#(Self.peer)","app":"1","channels":{"chat":3}}"#)
        #expect(harness.count("chat") == 3)
        harness.receive(
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{"presence-r":[{"user_id":"2","channel_data":"{\"user_id\":2}"}]}},"occupancy":{"1":{"presence-r":1,"news":2}}}"#
        )
        #expect(harness.users() == [.number("2")])
        #expect(harness.count("chat") == 0 && harness.count("news") == 2 && harness.count("presence-r") == 1)
        // A sync_state for another node is not ours to apply.
        harness.receive(
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","to":"ffffffffffffffff","presence":{"1":{}}}"#)
        #expect(harness.users() == [.number("2")])
        harness.receive(#"{"v":1,"type":"node_leave","node":"\#(Self.peer)"}"#)
        #expect(harness.users().isEmpty && harness.count("news") == 0)
        #expect(!harness.node.livePeers.contains(Self.peer))
        // Late messages of a departed node do not bring it back.
        harness.join("3")
        #expect(harness.users().isEmpty && !harness.node.livePeers.contains(Self.peer))
    }

    @Test("a node it did not know is asked for its state; sync_request is answered with one sync_state per app")
    func askUnknownPeers() throws {
        let harness = try Harness()
        let before = harness.node.publisher.queuedMessageCount
        harness.receive(
            #"{"v":1,"type":"heartbeat","node":"\#(Self.peer)","host":"h","pid":1,"started_at":1,"version":"x"}"#)
        // Our heartbeat in reply, and a sync_request to it.
        #expect(harness.node.publisher.queuedMessageCount == before + 2)
        harness.receive(
            #"{"v":1,"type":"heartbeat","node":"\#(Self.peer)","host":"h","pid":1,"started_at":1,"version":"x"}"#)
        #expect(harness.node.publisher.queuedMessageCount == before + 2)
        harness.receive(#"{"v":1,"type":"sync_request","node":"\#(Self.peer)"}"#)
        #expect(harness.node.publisher.queuedMessageCount == before + 3)
        harness.receive(#"{"v":1,"type":"sync_request","node":"\#(Self.peer)","to":"ffffffffffffffff"}"#)
        #expect(harness.node.publisher.queuedMessageCount == before + 3)
    }

    @Test("a presence message in this node's own name that it did not send is counted and corrected")
    func impersonation() async throws {
        let harness = try Harness()
        let own = harness.node.nodeID
        let member = try #require(PresenceMember(channelData: #"{"user_id":5}"#))
        harness.node.announce([.join(channel: "presence-r", member: member)], app: "1")
        let echo = ClusterEnvelope.presence(
            node: own, app: "1", announcement: .join(channel: "presence-r", member: member))
        harness.node.receive(echo)
        #expect(harness.node.impersonationCount == 0)
        let queued = harness.node.publisher.queuedMessageCount
        harness.join("ghost", node: own)
        #expect(harness.node.impersonationCount == 1)
        #expect(harness.users().isEmpty, "a message in our name never changes our own state")
        // The corrective sync_state is sent from the node's event loop.
        let deadline = ContinuousClock.now + .seconds(5)
        while harness.node.publisher.queuedMessageCount == queued && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(harness.node.publisher.queuedMessageCount == queued + 1)
    }

    @Test("a flood of joins from a fake node stops at the caps and is counted")
    func flood() throws {
        var limits = ChannelDirectoryState.Limits()
        limits.remoteMembers = 1_000
        let harness = try Harness(limits: limits)
        for i in 0..<10_000 { harness.join("u\(i)", channel: "presence-flood") }
        #expect(harness.users("presence-flood").count == 1_000)
        #expect(harness.node.refusedAtCapsCount == 9_000)
        harness.receive(#"{"v":1,"type":"node_leave","node":"\#(Self.peer)"}"#)
        #expect(harness.users("presence-flood").isEmpty)
    }

    @Test("garbage, unknown apps and unknown types change nothing and are counted")
    func garbage() throws {
        let harness = try Harness()
        for message in [
            "not json", "[1]", #"{"v":1,"type":"presence_join","node":""}"#,
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"nope":{"presence-x":[{"user_id":"1","channel_data":"{\"user_id\":\"1\"}"}]}}}"#,
            #"{"v":1,"type":"occupancy","node":"\#(Self.peer)","app":"1","channels":{"a":-1}}"#,
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{"presence-x":[{"user_id":"1"}]}}}"#,
            #"{"v":1,"type":"whatever","node":"\#(Self.peer)"}"#,
        ] {
            harness.receive(message)
        }
        #expect(harness.users("presence-x").isEmpty && harness.count("a") == 0)
        #expect(harness.node.droppedMessageCount == 7)
    }

    /// A stream entry appended `age` milliseconds ago.
    static func entry(_ text: String, origin: String = ClusterNodeTests.peer, sequence: UInt64, age: UInt64 = 0)
        -> RedisStreamEntry
    {
        RedisStreamEntry(
            id: RedisStreamID(milliseconds: ClusterNode.wallClockMilliseconds() - age, sequence: 0), origin: origin,
            sequence: sequence, payload: ByteBuffer(string: text))
    }

    @Test("streams: a publisher's second copy is dropped; order per origin is kept by sequence")
    func duplicateEntries() throws {
        let harness = try Harness()
        let join =
            #"{"v":1,"type":"presence_join","node":"\#(Self.peer)","app":"1","channel":"presence-r","user_id":"1","channel_data":"{\"user_id\":1}"}"#
        let leave =
            #"{"v":1,"type":"presence_leave","node":"\#(Self.peer)","app":"1","channel":"presence-r","user_id":"1"}"#
        harness.node.receive(Self.entry(join, sequence: 1))
        harness.node.receive(Self.entry(leave, sequence: 2))
        // The publisher retried after a reconnect: both again. Applying them would flip the state.
        harness.node.receive(Self.entry(join, sequence: 1))
        #expect(harness.users().isEmpty)
        harness.node.receive(Self.entry(leave, sequence: 2))
        #expect(harness.node.duplicateEntryCount == 2)
        harness.node.receive(Self.entry(join, sequence: 3))
        #expect(harness.users() == [.number("1")])
    }

    @Test("streams: past the replay window an event updates the cache but reaches no client; stale nodes stay dead")
    func lateEntries() throws {
        let harness = try Harness()
        let broadcast =
            #"{"v":1,"type":"broadcast","node":"\#(Self.peer)","app":"1","payload":{"event":"E","channel":"cache-c","data":"{}"}}"#
        // Known peer (heard from now), entry from 61 s ago.
        harness.receive(
            #"{"v":1,"type":"heartbeat","node":"\#(Self.peer)","host":"h","pid":1,"started_at":1,"version":"x"}"#)
        harness.node.receive(Self.entry(broadcast, sequence: 1, age: 61_000))
        let cached = harness.app.directory.withState { $0.cachedFrame(for: "cache-c", now: .now()) }
        #expect(cached.map { String(buffer: $0.payload) } == #"{"event":"E","channel":"cache-c","data":"{}"}"#)
        #expect(harness.node.staleBroadcastCount == 1)
        harness.node.receive(Self.entry(broadcast, sequence: 2, age: 59_000))
        #expect(harness.node.staleBroadcastCount == 1, "inside the window: delivered, not counted")
        // A node nobody knows, whose entries are 20 s old: not brought back to life.
        let ghost = "00000000000000cc"
        harness.node.receive(
            Self.entry(
                #"{"v":1,"type":"heartbeat","node":"\#(ghost)","host":"h","pid":1,"started_at":1,"version":"x"}"#,
                origin: ghost, sequence: 1, age: 20_000))
        harness.node.receive(
            Self.entry(
                #"{"v":1,"type":"presence_join","node":"\#(ghost)","app":"1","channel":"presence-r","user_id":"9","channel_data":"{\"user_id\":9}"}"#,
                origin: ghost, sequence: 2, age: 20_000))
        #expect(!harness.node.livePeers.contains(ghost))
        #expect(harness.users().isEmpty)
    }
}

/// Signed-in users from the bus (docs.md "Scaling": `user_join`, `user_leave`, `sync_state` `users`).
@Suite("Cluster node: signed-in users from bus messages")
struct ClusterNodeUserTests {
    static let peer = ClusterNodeTests.peer

    func online(_ harness: ClusterNodeTests.Harness, _ identity: String) -> Bool {
        harness.app.directory.withState { $0.isOnline(identity) }
    }

    @Test("user_join / user_leave add and remove the sender's users; sync_state replaces them; node_leave drops them")
    func users() throws {
        let harness = try ClusterNodeTests.Harness()
        harness.receive(#"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1","user_id":"u1"}"#)
        harness.receive(#"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1","user_id":"u2"}"#)
        #expect(online(harness, "u1") && online(harness, "u2"))
        harness.receive(#"{"v":1,"type":"user_leave","node":"\#(Self.peer)","app":"1","user_id":"u1"}"#)
        #expect(!online(harness, "u1"))
        harness.receive(
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{}},"occupancy":{"1":{}},"users":{"1":["u3"]}}"#
        )
        #expect(!online(harness, "u2") && online(harness, "u3"))
        // A sync_state without `users` (an older node) holds none.
        harness.receive(#"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{}}}"#)
        #expect(!online(harness, "u3"))
        harness.receive(#"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1","user_id":"u4"}"#)
        harness.receive(#"{"v":1,"type":"node_leave","node":"\#(Self.peer)"}"#)
        #expect(!online(harness, "u4"))
        #expect(harness.node.droppedMessageCount == 0)
    }

    @Test("malformed user messages are dropped and counted")
    func malformed() throws {
        let harness = try ClusterNodeTests.Harness()
        for message in [
            #"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1"}"#,
            #"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1","user_id":""}"#,
            #"{"v":1,"type":"user_join","node":"\#(Self.peer)","app":"1","user_id":5}"#,
            #"{"v":1,"type":"user_leave","node":"\#(Self.peer)","app":"1"}"#,
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{}},"users":{"1":"u1"}}"#,
            #"{"v":1,"type":"sync_state","node":"\#(Self.peer)","presence":{"1":{}},"users":{"1":[5]}}"#,
        ] {
            harness.receive(message)
        }
        #expect(harness.node.droppedMessageCount == 6)
        #expect(harness.app.directory.withState { $0.signedInUserCount } == 0)
    }

    @Test("sync_state and user messages, byte for byte")
    func envelopes() throws {
        let node = "9f2c4e1a7b3d5f60"
        #expect(
            String(buffer: ClusterEnvelope.presence(node: node, app: "123456", announcement: .userJoin(userID: "42")))
                == #"{"v":1,"type":"user_join","node":"9f2c4e1a7b3d5f60","app":"123456","user_id":"42"}"#)
        #expect(
            String(buffer: ClusterEnvelope.presence(node: node, app: "123456", announcement: .userLeave(userID: "42")))
                == #"{"v":1,"type":"user_leave","node":"9f2c4e1a7b3d5f60","app":"123456","user_id":"42"}"#)
        #expect(
            String(
                buffer: ClusterEnvelope.syncState(
                    node: node, to: "0c7d2b9e4f1a3856", app: "123456",
                    state: (presence: [], counts: [("#server-to-user-42", 1)], users: ["42", "u\"1"])))
                == ##"{"v":1,"type":"sync_state","node":"9f2c4e1a7b3d5f60","to":"0c7d2b9e4f1a3856","presence":{"123456":{}},"occupancy":{"123456":{"#server-to-user-42":1}},"users":{"123456":["42","u\"1"]}}"##
        )
    }

    @Test("a user message in this node's own name that it did not send is counted as an impersonation")
    func impersonation() throws {
        let harness = try ClusterNodeTests.Harness()
        let own = harness.node.nodeID
        harness.node.announce([.userJoin(userID: "u1")], app: "1")
        harness.node.receive(ClusterEnvelope.presence(node: own, app: "1", announcement: .userJoin(userID: "u1")))
        #expect(harness.node.impersonationCount == 0)
        harness.receive(#"{"v":1,"type":"user_join","node":"\#(own)","app":"1","user_id":"ghost"}"#)
        #expect(harness.node.impersonationCount == 1)
        #expect(!online(harness, "ghost"))
    }
}
