import NIOCore
import Testing

@testable import Reverb

/// The webhook rules with a manual clock (`http-api.md` §8.1): batching, the retry schedule, the
/// departure delay and its cancellation, the subscription_count throttle, the bounded queue.
@Suite struct WebhookQueueTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(_ milliseconds: Int64) -> NIODeadline { t0 + .milliseconds(milliseconds) }

    static func queue(_ webhooks: [Webhook] = [Webhook(url: "http://a")], capacity: Int = 10_000) -> WebhookQueue {
        var timing = WebhookQueue.Timing()
        timing.capacity = capacity
        return WebhookQueue(webhooks: webhooks, timing: timing)
    }

    @Test func eventsAreGatheredFor50Milliseconds() {
        var queue = Self.queue()
        queue.record(.cacheMiss("a"), now: Self.at(0))
        queue.record(.cacheMiss("b"), now: Self.at(10))
        #expect(queue.nextDeadline() == Self.at(50))
        #expect(queue.poll(now: Self.at(49)) == [])
        #expect(queue.poll(now: Self.at(50)) == [.init(endpoint: 0, events: [.cacheMiss("a"), .cacheMiss("b")])])
        #expect(queue.nextDeadline() == nil)
    }

    @Test func atMost100EventsAPostAndTheRestAtOnce() {
        var queue = Self.queue()
        for index in 0..<250 { queue.record(.cacheMiss("c\(index)"), now: Self.at(0)) }
        let first = queue.poll(now: Self.at(0))
        #expect(first.map(\.events.count) == [100])
        #expect(first[0].events.first == .cacheMiss("c0"))
        // One POST in flight per URL: nothing more until it is answered.
        #expect(queue.poll(now: Self.at(1)) == [])
        #expect(queue.finished(endpoint: 0, success: true, now: Self.at(2)) == .delivered)
        let second = queue.poll(now: Self.at(2))
        #expect(second.map(\.events.count) == [100])
        #expect(second[0].events.first == .cacheMiss("c100"))
        _ = queue.finished(endpoint: 0, success: true, now: Self.at(3))
        // The last 50 have waited their 50 ms since t0 by then.
        #expect(queue.poll(now: Self.at(3)) == [])
        #expect(queue.poll(now: Self.at(50)).map(\.events.count) == [50])
        #expect(queue.waitingCount == 0)
    }

    @Test func retriedAfter1248Seconds60AtMostFor5Minutes() {
        var queue = Self.queue()
        queue.record(.occupied("a"), now: Self.at(0))
        var now = Self.at(50)
        var attempts: [Int64] = []
        var outcome = WebhookQueue.Outcome.delivered
        while true {
            let due = queue.poll(now: now)
            guard !due.isEmpty else { break }
            #expect(due == [.init(endpoint: 0, events: [.occupied("a")])])
            attempts.append((now - Self.t0).nanoseconds / 1_000_000)
            outcome = queue.finished(endpoint: 0, success: false, now: now)
            guard case .willRetry(let next) = outcome else { break }
            #expect(queue.nextDeadline() == next)
            #expect(queue.poll(now: next - .milliseconds(1)) == [])
            now = next
        }
        #expect(attempts == [50, 1050, 3050, 7050, 15050, 31050, 63050, 123_050, 183_050, 243_050])
        #expect(outcome == .gaveUp(1))
        #expect(queue.droppedCount == 1)
        #expect(queue.pendingCount == 0)
    }

    @Test func eventsArrivingDuringRetriesFollowInOrder() {
        var queue = Self.queue()
        queue.record(.cacheMiss("first"), now: Self.at(0))
        _ = queue.poll(now: Self.at(50))
        queue.record(.cacheMiss("second"), now: Self.at(60))
        #expect(queue.finished(endpoint: 0, success: false, now: Self.at(70)) == .willRetry(Self.at(1070)))
        #expect(queue.poll(now: Self.at(1070)) == [.init(endpoint: 0, events: [.cacheMiss("first")])])
        _ = queue.finished(endpoint: 0, success: true, now: Self.at(1080))
        #expect(queue.poll(now: Self.at(1080)) == [.init(endpoint: 0, events: [.cacheMiss("second")])])
    }

    @Test func vacatedWaits3SecondsAndAReturnCancelsBoth() {
        var queue = Self.queue()
        queue.occupied("a", now: Self.at(0))
        #expect(queue.poll(now: Self.at(50)) == [.init(endpoint: 0, events: [.occupied("a")])])
        _ = queue.finished(endpoint: 0, success: true, now: Self.at(60))
        queue.vacated("a", now: Self.at(1000))
        #expect(queue.nextDeadline() == Self.at(4000))
        queue.occupied("a", now: Self.at(3999))
        #expect(queue.nextDeadline() == nil)
        #expect(queue.poll(now: Self.at(10_000)) == [])
        queue.vacated("a", now: Self.at(20_000))
        #expect(queue.poll(now: Self.at(22_999)) == [])
        #expect(queue.poll(now: Self.at(23_000)) == [])
        #expect(queue.poll(now: Self.at(23_050)) == [.init(endpoint: 0, events: [.vacated("a")])])
    }

    @Test func memberRemovedWaitsAndARejoinCancelsIt() {
        var queue = Self.queue()
        queue.memberRemoved("presence-a", userID: "1", now: Self.at(0))
        queue.memberRemoved("presence-a", userID: "2", now: Self.at(0))
        queue.vacated("presence-a", now: Self.at(0))
        queue.memberAdded("presence-a", userID: "1", now: Self.at(2000))
        #expect(
            queue.poll(now: Self.at(3050)) == [
                .init(endpoint: 0, events: [.memberRemoved("presence-a", userID: "2"), .vacated("presence-a")])
            ])
    }

    @Test func eachURLGetsWhatItsEntryTakes() {
        var queue = Self.queue([
            Webhook(url: "http://a", eventTypes: [.cacheMiss]),
            Webhook(url: "http://b", channelNameStartsWith: "presence-"),
        ])
        queue.record(.cacheMiss("cache-x"), now: Self.at(0))
        queue.occupied("presence-y", now: Self.at(0))
        queue.occupied("private-z", now: Self.at(0))
        // Nobody takes it: not even delayed.
        queue.vacated("private-z", now: Self.at(0))
        #expect(
            queue.poll(now: Self.at(50)) == [
                .init(endpoint: 0, events: [.cacheMiss("cache-x")]),
                .init(endpoint: 1, events: [.occupied("presence-y")]),
            ])
        #expect(queue.nextDeadline() == nil)
    }

    @Test func subscriptionCountAtMostOncePer5SecondsWithTheLatestCount() {
        var queue = Self.queue([Webhook(url: "http://a", eventTypes: [.subscriptionCount])])
        queue.countChanged("c", count: 1, now: Self.at(0))
        queue.countChanged("c", count: 2, now: Self.at(1000))
        queue.countChanged("c", count: 3, now: Self.at(2000))
        #expect(queue.poll(now: Self.at(50)) == [.init(endpoint: 0, events: [.count("c", 1)])])
        _ = queue.finished(endpoint: 0, success: true, now: Self.at(60))
        #expect(queue.nextDeadline() == Self.at(5000))
        #expect(queue.poll(now: Self.at(5000)) == [])
        #expect(queue.poll(now: Self.at(5050)) == [.init(endpoint: 0, events: [.count("c", 3)])])
    }

    @Test func aFullQueueDropsTheOldest() {
        var queue = Self.queue([Webhook(url: "http://a"), Webhook(url: "http://b")], capacity: 3)
        queue.record(.cacheMiss("1"), now: Self.at(0))
        queue.record(.cacheMiss("2"), now: Self.at(1))
        #expect(queue.droppedCount == 1)
        #expect(queue.waitingCount == 3)
        #expect(
            queue.poll(now: Self.at(51)) == [
                .init(endpoint: 0, events: [.cacheMiss("2")]),
                .init(endpoint: 1, events: [.cacheMiss("1"), .cacheMiss("2")]),
            ])
    }
}
