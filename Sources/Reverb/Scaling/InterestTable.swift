/// Which bucket channels a node listens to in interest routing (`scaling.routing` `interest`,
/// docs.md "Scaling"): the rules, with time passed in, and no Redis.
///
/// A Pusher channel hashes to one of `buckets` buckets; bucket `n` is the Redis channel
/// `<scaling.channel>:<n>`. A bucket is wanted while at least one of its channels has local
/// subscribers; when its last one leaves it lingers for `linger` before it is unsubscribed, so a
/// channel that empties and fills again (a page reload) costs no Redis round trip and misses nothing.
struct InterestTable: Sendable {
    /// What the caller must tell Redis.
    struct Change: Equatable, Sendable {
        var subscribe: [String] = []
        var unsubscribe: [String] = []
        var isEmpty: Bool { subscribe.isEmpty && unsubscribe.isEmpty }
    }

    let prefix: String
    let buckets: Int
    let linger: Duration
    /// Per bucket, the `app \0 channel` keys with local subscribers.
    private var channels: [Int: Set<String>] = [:]
    /// Empty buckets still subscribed, and since when.
    private var lingering: [Int: ContinuousClock.Instant] = [:]

    init(prefix: String, buckets: Int, linger: Duration = .seconds(5)) {
        precondition(buckets >= 1 && buckets & (buckets - 1) == 0, "buckets must be a power of two")
        self.prefix = prefix
        self.buckets = buckets
        self.linger = linger
    }

    /// The bucket of `channel` in `app`: FNV-1a over the app id, a zero byte and the name, so that
    /// it is the same on every node and every build (Swift's `Hasher` is seeded per process).
    static func bucket(app: String, channel: String, buckets: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in app.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        hash = (hash ^ 0) &* 0x0000_0100_0000_01B3
        for byte in channel.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return Int(hash & UInt64(buckets - 1))
    }

    /// The Redis channel an event of `channel` in `app` is published to.
    func redisChannel(app: String, channel: String) -> String {
        "\(prefix):\(Self.bucket(app: app, channel: channel, buckets: buckets))"
    }

    /// Bucket channels subscribed now (wanted or lingering).
    var subscribed: [String] {
        (Set(channels.keys).union(lingering.keys)).sorted().map { "\(prefix):\($0)" }
    }

    /// Buckets with local subscribers.
    var wantedCount: Int { channels.count }

    /// How many bucket channels are subscribed now: a bucket is either wanted or lingering, never both.
    var subscribedCount: Int { channels.count + lingering.count }

    /// `channel` of `app` now has `count` local subscribers.
    mutating func localCount(_ count: Int, app: String, channel: String, now: ContinuousClock.Instant) -> Change {
        let bucket = Self.bucket(app: app, channel: channel, buckets: buckets)
        let key = app + "\u{0}" + channel
        var change = Change()
        if count > 0 {
            let wasWanted = channels[bucket] != nil
            channels[bucket, default: []].insert(key)
            if !wasWanted && lingering.removeValue(forKey: bucket) == nil {
                change.subscribe.append("\(prefix):\(bucket)")
            }
        } else if var keys = channels[bucket], keys.remove(key) != nil {
            if keys.isEmpty {
                channels[bucket] = nil
                lingering[bucket] = now
            } else {
                channels[bucket] = keys
            }
        }
        return change
    }

    /// Unsubscribes the buckets that have lingered empty for `linger`.
    mutating func expire(now: ContinuousClock.Instant) -> Change {
        var change = Change()
        for (bucket, since) in lingering where now - since >= linger {
            lingering[bucket] = nil
            change.unsubscribe.append("\(prefix):\(bucket)")
        }
        change.unsubscribe.sort()
        return change
    }

    /// Whether a bucket lingers (the caller schedules `expire`).
    var hasLingering: Bool { !lingering.isEmpty }
}
