import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// State shared by every connection of this node: the apps, one inbox per event loop, and the set
/// of socket ids in use.
final class NodeContext: Sendable {
    let inboxes: [ShardInbox]
    let logger: Logger
    private let socketIDs = NIOLockedValueBox(Set<String>())
    /// Orders broadcasts against subscriptions (`Delivery.sequence`).
    private let broadcastSequence = Atomic<UInt64>(0)
    private let clusterBox = NIOLockedValueBox<ClusterNode?>(nil)

    /// The cluster membership when scaling is enabled and started.
    var cluster: ClusterNode? {
        get { clusterBox.withLockedValue { $0 } }
        set { clusterBox.withLockedValue { $0 = newValue } }
    }
    private let appsBox = NIOLockedValueBox<
        (byKey: [String: AppContext], byID: [String: AppContext], all: [AppContext])
    >(
        ([:], [:], []))

    init(applications: [Application], eventLoops: [any EventLoop], logger: Logger) {
        self.inboxes = eventLoops.map { ShardInbox(shard: LoopShard(eventLoop: $0)) }
        self.logger = logger
        var byKey: [String: AppContext] = [:]
        var byID: [String: AppContext] = [:]
        var all: [AppContext] = []
        for application in applications {
            let context = AppContext(application: application, node: self)
            byKey[application.key] = context
            byID[application.id] = context
            all.append(context)
        }
        appsBox.withLockedValue { $0 = (byKey, byID, all) }
    }

    /// The app with this key, compared exactly.
    func app(key: String) -> AppContext? { appsBox.withLockedValue { $0.byKey[key] } }

    /// The app with this id, compared exactly.
    func app(id: String) -> AppContext? { appsBox.withLockedValue { $0.byID[id] } }

    var apps: [AppContext] { appsBox.withLockedValue { $0.all } }

    /// The inbox of `eventLoop`.
    func inbox(for eventLoop: any EventLoop) -> ShardInbox? {
        inboxes.first { $0.eventLoop === eventLoop }
    }

    /// The sequence number of a new broadcast.
    func nextBroadcastSequence() -> UInt64 {
        broadcastSequence.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
    }

    /// The last sequence number issued: a subscription recorded now sees only later broadcasts.
    func currentBroadcastSequence() -> UInt64 {
        broadcastSequence.load(ordering: .sequentiallyConsistent)
    }

    /// A socket id not used by any open connection of this node.
    func allocateSocketID() -> String {
        while true {
            let candidate = SocketID.random()
            if socketIDs.withLockedValue({ $0.insert(candidate).inserted }) { return candidate }
        }
    }

    func releaseSocketID(_ socketID: String) {
        _ = socketIDs.withLockedValue { $0.remove(socketID) }
    }
}
