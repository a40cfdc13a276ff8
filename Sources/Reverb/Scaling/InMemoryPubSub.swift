import NIOCore

/// A single node: there is nobody to tell, and every answer is the local one.
struct InMemoryPubSub: PubSubProvider {
    func publishToPeers(_ event: BroadcastEvent, app: String) {}

    func publishTermination(app: String, userID: String) {}

    func gather(
        app: String, request: ClusterQueryRequest, local: JSONObject, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ClusterChannelView> {
        eventLoop.makeSucceededFuture(ClusterChannelView(merging: local))
    }

    func announce(_ announcements: [PresenceAnnouncement], app: String) {}

    func localCountChanged(channel: String, app: AppContext) {}

    func sendsWebhooks(for channel: String) -> Bool { true }

    var stateIsPartial: Bool { false }

    var isDegraded: Bool { false }
}
