import NIOCore
import Synchronization

/// Everything the server keeps for one app on this node: its settings, channel directory and
/// connection count. Shared by all event loops; its parts are individually thread-safe.
final class AppContext: Sendable {
    let application: Application
    let directory: ChannelDirectory
    /// Open connections of the app on this node that passed the opening checks (`max_connections`).
    let connectionCount = Atomic<Int>(0)
    let fanout: Fanout
    /// `pusher_internal:subscription_count` when the app asks for it.
    let subscriptionCounts: SubscriptionCountReporter?

    /// The app's webhooks on this node; nil when it has none (or they are off in tests).
    let webhooks: AppWebhooks?

    /// The app's position in the registry: its slot in each loop's `LoopMetrics`.
    let index: Int

    /// The app's debug consoles (docs.md "Dashboard"); one atomic read per event while none is open.
    let debug = DebugTap()

    init(
        application: Application, fanout: Fanout, limits: ChannelDirectoryState.Limits = .init(),
        webhooks: AppWebhooks? = nil, index: Int = 0
    ) {
        self.application = application
        self.index = index
        self.webhooks = webhooks
        self.fanout = fanout
        self.directory = ChannelDirectory(limits: limits)
        self.subscriptionCounts =
            application.subscriptionCount ? SubscriptionCountReporter(eventLoop: fanout.inboxes[0].eventLoop) : nil
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

    /// The fan-out key of `channel` in this app.
    func key(_ channel: String) -> ChannelKey {
        ChannelKey(appID: application.id, channel: channel)
    }

    /// Writes `frame` to every local subscriber of `channel` but `exceptSocketID`, through each
    /// interested event loop's inbox: encoded once, one flush per connection per drain.
    /// - Parameter sequence: the broadcast's sequence number when the caller already drew it.
    func broadcastLocally(
        channel: String, frame: OutboundFrame, except exceptSocketID: String?, sequence: UInt64? = nil
    ) {
        fanout.broadcast(key(channel), frame: frame, except: exceptSocketID, sequence: sequence)
    }

    /// Carries out what a directory change implies: member events to local subscribers, watchlist
    /// events to local watchers, announcements to the other nodes, subscriber counts. Called under the directory's lock, so
    /// that changes reach clients and peers in the order they happened.
    /// - Parameter localCount: a channel whose local subscriber count changed.
    func carryOut(_ changes: DirectoryChanges, countChanged localCount: String?, pubSub: any PubSubProvider) {
        for change in changes.members {
            switch change {
            case .added(let channel, let member, let except):
                broadcastLocally(
                    channel: channel,
                    frame: PusherFrames.memberAdded(channel: channel, channelData: member.channelData),
                    except: except)
            case .removed(let channel, let userID):
                broadcastLocally(
                    channel: channel, frame: PusherFrames.memberRemoved(channel: channel, userID: userID), except: nil)
            }
        }
        for change in changes.watchlist {
            switch change {
            case .online(let identity):
                broadcastLocally(
                    channel: ChannelName.watchers(of: identity),
                    frame: PusherFrames.watchlistEvents(offline: [], online: [identity]), except: nil)
            case .offline(let identity):
                broadcastLocally(
                    channel: ChannelName.watchers(of: identity),
                    frame: PusherFrames.watchlistEvents(offline: [identity], online: []), except: nil)
            }
        }
        if !changes.announcements.isEmpty { pubSub.announce(changes.announcements, app: id) }
        webhooks?.carryOut(changes) { pubSub.sendsWebhooks(for: $0) }
        if let localCount { pubSub.localCountChanged(channel: localCount, app: self) }
        if let subscriptionCounts {
            if let localCount { subscriptionCounts.countChanged(localCount, app: self) }
            for channel in changes.countsChanged { subscriptionCounts.countChanged(channel, app: self) }
        }
    }

    /// Delivers a channel event (HTTP API, whisper, or from another node) on this node: caches it
    /// on cache channels, then writes it to the local subscribers.
    func deliverChannelEvent(channel: String, frame: OutboundFrame, except exceptSocketID: String?) {
        var sequence: UInt64?
        if ChannelName.kind(of: channel).isCache {
            let now = NIODeadline.now()
            let fanout = self.fanout
            // Stored and numbered under the lock a subscriber takes to read the cache and note its
            // join: it gets the event either from the cache or live, never both, never neither.
            sequence = directory.withState {
                $0.storeCachedEvent(channel: channel, frame: frame, now: now)
                return fanout.nextSequence()
            }
        }
        broadcastLocally(channel: channel, frame: frame, except: exceptSocketID, sequence: sequence)
    }

    /// Records a cache channel's event without delivering it (a stream entry read too late for
    /// clients, `scaling.replay_window`); other channels are left alone.
    func recordCachedEvent(channel: String, frame: OutboundFrame) {
        guard ChannelName.kind(of: channel).isCache else { return }
        let now = NIODeadline.now()
        directory.withState { $0.storeCachedEvent(channel: channel, frame: frame, now: now) }
    }

    /// Delivers every channel of `event` on this node.
    func deliver(_ event: BroadcastEvent) {
        for target in event.targets {
            deliverChannelEvent(channel: target.channel, frame: target.frame, except: event.exceptSocketID)
        }
    }

    /// Closes every local connection of this app whose user identity is `identity` (Close 1008):
    /// presence member data or sign-in (`protocol.md` §13.3).
    func terminateLocally(identity: String) -> EventLoopFuture<Int> {
        let appID = application.id
        return fanout.onEveryShard { shard -> Int in
            var closed = 0
            for connection in shard.connections(of: appID) where connection.userIdentities.contains(identity) {
                connection.terminate()
                closed += 1
            }
            return closed
        }.map { $0.reduce(0, +) }
    }
}
