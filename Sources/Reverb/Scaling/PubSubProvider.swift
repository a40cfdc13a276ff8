import NIOCore

/// What a node sends to and asks of the other nodes: nothing on a single node (`InMemoryPubSub`),
/// Redis in a cluster (`ClusterNode`). Chosen once at start-up, so no hot path asks whether
/// scaling is on.
protocol PubSubProvider: Sendable {
    /// Sends an event, already delivered here, to every other node.
    func publishToPeers(_ event: BroadcastEvent, app: String)

    /// Asks every other node to close the connections of `userID` (`scaling.md` §4.5).
    func publishTermination(app: String, userID: String)

    /// Merges this node's `local` answer with every other node's answer to `request`.
    func gather(
        app: String, request: ClusterQueryRequest, local: JSONObject, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ClusterChannelView>

    /// Tells the other nodes of local presence and sign-in changes (`scaling.md` §4.6, docs.md
    /// "Scaling"). Called under the
    /// app's directory lock, so announcements leave in the order the changes happened.
    func announce(_ announcements: [PresenceAnnouncement], app: String)

    /// The number of local subscribers of `channel` changed; the other nodes learn it shortly.
    /// Called under the app's directory lock: it must not take that lock.
    func localCountChanged(channel: String, app: AppContext)

    /// Whether this node sends the occupancy, member and count webhooks of `channel`: exactly one
    /// node of the cluster does, by the owner rule of `ClusterNode.sendsWebhooks(for:)`.
    func sendsWebhooks(for channel: String) -> Bool

    /// This node cannot hear the others, so its replicated view may be stale (answers say
    /// `X-Reverb-Partial: 1`).
    var stateIsPartial: Bool { get }

    /// Either Redis link has been down for `REDIS_TIMEOUT` or longer (`/up` says `DEGRADED`).
    var isDegraded: Bool { get }
}

extension PubSubProvider {
    /// Delivers `event` on this node at once, then sends it to the other nodes (`scaling.md` §4.3).
    func publish(_ event: BroadcastEvent, app: AppContext) {
        app.deliver(event)
        publishToPeers(event, app: app.id)
    }

    /// Closes the user's connections here, then on every other node.
    func terminate(identity: String, app: AppContext) -> EventLoopFuture<Int> {
        let local = app.terminateLocally(identity: identity)
        publishTermination(app: app.id, userID: identity)
        return local
    }
}
