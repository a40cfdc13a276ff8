import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// One app's webhooks on this node: turns directory changes, whispers and cache misses into events
/// for its `WebhookQueue` and wakes the `WebhookSender`.
///
/// Called from every event loop and the cluster bus, under the app's directory lock for directory
/// changes; the queue sits behind its own small lock (taken after the directory's, never before),
/// which covers queue updates only, never a POST or a log.
final class AppWebhooks: Sendable {
    let appID: String
    let key: String
    let secret: String
    let webhooks: [Webhook]
    private let queue: NIOLockedValueBox<WebhookQueue>
    private let wake: WakeSignal
    /// POSTs answered 2xx.
    let sentCount = Atomic<Int>(0)
    /// Attempts that failed (status, timeout, connection).
    let failedCount = Atomic<Int>(0)

    init(application: Application, wake: WakeSignal, timing: WebhookQueue.Timing = .init()) {
        self.appID = application.id
        self.key = application.key
        self.secret = application.secret
        self.webhooks = application.webhooks
        self.queue = NIOLockedValueBox(WebhookQueue(webhooks: application.webhooks, timing: timing))
        self.wake = wake
    }

    /// Events given up (retry window over, queue full).
    var droppedCount: Int { queue.withLockedValue { $0.droppedCount } }

    /// Events waiting, in flight or delayed.
    var depth: Int { queue.withLockedValue { $0.pendingCount } }

    private func change(_ body: (inout WebhookQueue, NIODeadline) -> Void) {
        let now = NIODeadline.now()
        queue.withLockedValue { body(&$0, now) }
        wake.signal()
    }

    /// The occupancy, member and count webhooks that `changes` implies, for the channels whose
    /// webhooks this node sends (`owns`, the cluster's owner rule: `PubSubProvider.sendsWebhooks`).
    /// Arrivals learnt from a peer's `sync_state` are not new to the cluster and send nothing.
    func carryOut(_ changes: DirectoryChanges, owns: (String) -> Bool) {
        guard !changes.occupancy.isEmpty || !changes.members.isEmpty else { return }
        // Decided before the queue's lock is taken: the rule may ask the cluster for its live nodes.
        var owned: [String: Bool] = [:]
        for occupancy in changes.occupancy {
            switch occupancy {
            case .occupied(let channel), .vacated(let channel), .count(let channel, _):
                if owned[channel] == nil { owned[channel] = owns(channel) }
            }
        }
        for member in changes.members {
            switch member {
            case .added(let channel, _, _), .removed(let channel, _):
                if owned[channel] == nil { owned[channel] = owns(channel) }
            }
        }
        func isOwned(_ channel: String) -> Bool { owned[channel] ?? false }
        // Arrivals before members, members before departures: `channel_occupied` precedes the first
        // `member_added`, the last `member_removed` precedes `channel_vacated`.
        change { queue, now in
            for occupancy in changes.occupancy {
                switch occupancy {
                case .occupied(let channel):
                    if !changes.fromSync && isOwned(channel) { queue.occupied(channel, now: now) }
                case .count(let channel, let count):
                    if !ChannelName.kind(of: channel).isPresence && isOwned(channel) {
                        queue.countChanged(channel, count: count, now: now)
                    }
                case .vacated:
                    break
                }
            }
            for member in changes.members {
                switch member {
                case .added(let channel, let member, _):
                    if !changes.fromSync && isOwned(channel) {
                        queue.memberAdded(channel, userID: member.identity, now: now)
                    }
                case .removed(let channel, let userID):
                    if isOwned(channel) {
                        let identity = PresenceMember.identity(of: userID) ?? JSONWriter.string(userID)
                        queue.memberRemoved(channel, userID: identity, now: now)
                    }
                }
            }
            for case .vacated(let channel) in changes.occupancy where isOwned(channel) {
                queue.vacated(channel, now: now)
            }
        }
    }

    /// A whisper this node accepted.
    func clientEvent(channel: String, event: String, data: JSONValue, socketID: String, userID: JSONValue?) {
        let identity = ChannelName.kind(of: channel).isPresence ? userID.flatMap(PresenceMember.identity(of:)) : nil
        change { queue, now in
            queue.record(
                .clientEvent(channel: channel, event: event, data: data, socketID: socketID, userID: identity), now: now
            )
        }
    }

    /// A subscriber of a cache channel got `pusher:cache_miss`.
    func cacheMiss(channel: String) {
        change { queue, now in queue.record(.cacheMiss(channel), now: now) }
    }

    // MARK: The sender's side

    func poll(now: NIODeadline) -> (attempts: [WebhookQueue.Attempt], next: NIODeadline?) {
        queue.withLockedValue { queue in
            let attempts = queue.poll(now: now)
            return (attempts, queue.nextDeadline())
        }
    }

    func finished(endpoint: Int, success: Bool, now: NIODeadline) -> WebhookQueue.Outcome {
        queue.withLockedValue { $0.finished(endpoint: endpoint, success: success, now: now) }
    }
}
