import Testing

@testable import Reverb

/// Interest routing's bookkeeping (docs.md "Scaling"): which bucket channels a node listens to.
@Suite struct InterestTableTests {
    private let start = ContinuousClock.now

    @Test func bucketsAreStableAcrossProcessesAndInRange() {
        // Pinned: every node of a cluster, whatever its build, must agree on a channel's bucket.
        // (FNV-1a 64 of "app1\0orders", computed outside Swift, masked to 12 bits.)
        #expect(InterestTable.bucket(app: "app1", channel: "orders", buckets: 4096) == 3436)
        let table = InterestTable(prefix: "reverb", buckets: 4096)
        #expect(
            table.redisChannel(app: "123456", channel: "private-chat.1")
                == "reverb:\(fnv("123456\u{0}private-chat.1") & 4095)")
        for index in 0..<1000 {
            let bucket = InterestTable.bucket(app: "a", channel: "c\(index)", buckets: 16)
            #expect((0..<16).contains(bucket))
        }
        #expect(InterestTable.bucket(app: "a", channel: "anything", buckets: 1) == 0)
        // Another app's channel of the same name may fall elsewhere.
        let spread = Set((0..<64).map { InterestTable.bucket(app: "app\($0)", channel: "news", buckets: 4096) })
        #expect(spread.count > 32)
    }

    /// FNV-1a 64 written out independently, as a reference.
    private func fnv(_ text: String) -> Int {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return Int(hash & 0x7fff_ffff_ffff_ffff)
    }

    @Test func firstSubscriberSubscribesTheBucketOnce() {
        var table = InterestTable(prefix: "reverb", buckets: 1)
        let first = table.localCount(1, app: "a", channel: "x", now: start)
        #expect(first.subscribe == ["reverb:0"])
        #expect(table.localCount(2, app: "a", channel: "x", now: start).isEmpty)
        #expect(table.localCount(1, app: "a", channel: "y", now: start).isEmpty)
        #expect(table.subscribed == ["reverb:0"])
        #expect(table.wantedCount == 1)
    }

    @Test func emptyBucketLingersThenGoes() {
        var table = InterestTable(prefix: "reverb", buckets: 1, linger: .seconds(5))
        _ = table.localCount(1, app: "a", channel: "x", now: start)
        _ = table.localCount(1, app: "a", channel: "y", now: start)
        #expect(table.localCount(0, app: "a", channel: "x", now: start).isEmpty)
        #expect(!table.hasLingering, "y still holds the bucket")
        #expect(table.localCount(0, app: "a", channel: "y", now: start).isEmpty)
        #expect(table.hasLingering)
        #expect(table.expire(now: start + .seconds(4)).isEmpty)
        #expect(table.subscribed == ["reverb:0"])
        #expect(table.subscribedCount == 1)
        #expect(table.expire(now: start + .seconds(5)).unsubscribe == ["reverb:0"])
        #expect(table.subscribedCount == 0)
        #expect(table.subscribed.isEmpty)
        #expect(table.expire(now: start + .seconds(50)).isEmpty)
    }

    @Test func channelThatReturnsWhileLingeringCostsNothing() {
        var table = InterestTable(prefix: "reverb", buckets: 1, linger: .seconds(5))
        _ = table.localCount(1, app: "a", channel: "x", now: start)
        _ = table.localCount(0, app: "a", channel: "x", now: start)
        #expect(table.localCount(1, app: "a", channel: "x", now: start + .seconds(1)).isEmpty)
        #expect(table.expire(now: start + .seconds(10)).isEmpty)
        #expect(table.subscribed == ["reverb:0"])
    }

    @Test func unknownChannelLeavingChangesNothing() {
        var table = InterestTable(prefix: "reverb", buckets: 8)
        #expect(table.localCount(0, app: "a", channel: "never", now: start).isEmpty)
        #expect(!table.hasLingering)
    }
}
