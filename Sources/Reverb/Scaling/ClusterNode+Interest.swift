import NIOConcurrencyHelpers
import NIOCore
import ReverbRedis

/// Interest routing (`scaling.routing` `interest`, docs.md "Scaling"): events go to their
/// channel's bucket, and this node listens to the buckets of the channels it has subscribers of.
extension ClusterNode {
    /// Publishes `event` once per bucket its channels fall in. Cache channels go to the control
    /// channel instead: every node keeps their last event, for a subscriber that comes later.
    func publishByInterest(_ event: BroadcastEvent, app: String, table: NIOLockedValueBox<InterestTable>) {
        if event.targets.count == 1 {
            let target = event.targets[0].channel
            let destination =
                ChannelName.kind(of: target).isCache
                ? channel : table.withLockedValue { $0.redisChannel(app: app, channel: target) }
            return publisher.publish(ClusterEnvelope.broadcast(node: nodeID, app: app, event: event), to: destination)
        }
        // Several channels (`channels` of an HTTP event): one message per destination, each with
        // its own channels, in the order of their first channel.
        var order: [String] = []
        var groups: [String: [BroadcastEvent.Target]] = [:]
        table.withLockedValue { table in
            for target in event.targets {
                let destination =
                    ChannelName.kind(of: target.channel).isCache
                    ? channel : table.redisChannel(app: app, channel: target.channel)
                if groups[destination] == nil { order.append(destination) }
                groups[destination, default: []].append(target)
            }
        }
        for destination in order {
            var part = event
            part.targets = groups[destination]!
            publisher.publish(ClusterEnvelope.broadcast(node: nodeID, app: app, event: part), to: destination)
        }
    }

    /// Local counts changed (on `loop`): subscribe a bucket when its first channel gets a local
    /// subscriber; one whose last channel emptied lingers and goes in `expireInterest`.
    func follow(_ counts: [(String, Int)], app: String, table: NIOLockedValueBox<InterestTable>) {
        let now = ContinuousClock.now
        var subscribe: [String] = []
        table.withLockedValue { table in
            for (name, count) in counts where !ChannelName.kind(of: name).isCache {
                subscribe += table.localCount(count, app: app, channel: name, now: now).subscribe
            }
        }
        if !subscribe.isEmpty { busSubscriber?.subscribe(subscribe) }
    }

    /// Unsubscribes buckets that lingered empty long enough (every `expiryInterval`).
    func expireInterest() {
        guard let interest else { return }
        let change = interest.withLockedValue { $0.expire(now: .now) }
        if !change.unsubscribe.isEmpty { busSubscriber?.unsubscribe(change.unsubscribe) }
    }

    /// Bucket channels listened to now (`/metrics`).
    var subscribedBucketCount: Int { interest?.withLockedValue { $0.subscribedCount } ?? 0 }
}
