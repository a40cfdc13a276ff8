import NIOCore
import Synchronization

/// Everything the server keeps for one app on this node: its settings, channel directory and
/// connection count. Shared by all event loops; its parts are individually thread-safe.
final class AppContext: Sendable {
    let application: Application
    let directory = ChannelDirectory()
    /// Open connections of the app on this node that passed the opening checks (`max_connections`).
    let connectionCount = Atomic<Int>(0)
    private let node: NodeContext

    init(application: Application, node: NodeContext) {
        self.application = application
        self.node = node
    }

    var id: String { application.id }

    /// Reserves a connection slot; false when the app is over its quota.
    func reserveConnection() -> Bool {
        let count = connectionCount.wrappingAdd(1, ordering: .relaxed).newValue
        if let max = application.maxConnections, count > max {
            connectionCount.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseConnection() {
        connectionCount.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Writes `frame` to every local subscriber of `channel` but `exceptSocketID`, through each
    /// event loop's inbox: encoded once, one flush per connection per loop tick.
    /// - Parameter sequence: the broadcast's sequence number when the caller already drew it.
    func broadcastLocally(
        channel: String, frame: OutboundFrame, except exceptSocketID: String?, sequence: UInt64? = nil
    ) {
        let delivery = Delivery(
            appID: application.id, channel: channel, frame: frame, exceptSocketID: exceptSocketID,
            sequence: sequence ?? node.nextBroadcastSequence())
        for inbox in node.inboxes { inbox.enqueue(delivery) }
    }

    /// Delivers a channel event (HTTP API or whisper) on this node: caches it on cache channels,
    /// then writes it to the local subscribers.
    func deliverChannelEvent(channel: String, frame: OutboundFrame, except exceptSocketID: String?) {
        var sequence: UInt64?
        if ChannelName.kind(of: channel).isCache {
            let now = NIODeadline.now()
            let node = self.node
            // Stored and numbered under the lock a subscriber takes to read the cache and note its
            // join: it gets the event either from the cache or live, never both, never neither.
            sequence = directory.withState {
                $0.storeCachedEvent(channel: channel, frame: frame, now: now)
                return node.nextBroadcastSequence()
            }
        }
        broadcastLocally(channel: channel, frame: frame, except: exceptSocketID, sequence: sequence)
    }

    /// Publishes a channel event to every node: delivered here at once, then sent to the others
    /// through the cluster bus when scaling is on (`scaling.md` §4.3).
    func publish(channel: String, frame: OutboundFrame, except exceptSocketID: String?) {
        deliverChannelEvent(channel: channel, frame: frame, except: exceptSocketID)
        node.cluster?.publishBroadcast(app: application.id, frame: frame, except: exceptSocketID)
    }

    /// Closes the user's connections here, then on every other node (`scaling.md` §4.5).
    func terminate(identity: String) -> EventLoopFuture<Int> {
        let local = terminateLocally(identity: identity)
        node.cluster?.publishTermination(app: application.id, userID: identity)
        return local
    }

    /// Closes every local connection of this app whose user identity is `identity` (Close 1008).
    func terminateLocally(identity: String) -> EventLoopFuture<Int> {
        let appID = application.id
        let futures = node.inboxes.map { inbox in
            inbox.submit { shard -> Int in
                var closed = 0
                for connection in shard.connections(of: appID) where connection.userIdentities.contains(identity) {
                    connection.terminate()
                    closed += 1
                }
                return closed
            }
        }
        return EventLoopFuture.whenAllSucceed(futures, on: node.inboxes[0].eventLoop).map { $0.reduce(0, +) }
    }
}
