import Testing

@testable import ReverbBench

@Suite("Sequence tracking and the delivery audit")
struct DeliveryAuditTests {
    @Test("the tracker counts distinct numbers, gaps, duplicates and late arrivals, below its first too")
    func tracker() {
        var tracker = SequenceTracker()
        for sequence: UInt64 in [100, 101, 103, 103, 70, 200] { tracker.record(sequence) }
        #expect(tracker.count == 5)
        #expect(tracker.lowest == 70)
        #expect(tracker.highest == 200)
        #expect(tracker.duplicates == 1)
        #expect(tracker.outOfOrder == 1)
        #expect(tracker.gaps == 131 - 5)
        for sequence: UInt64 in [70, 100, 101, 103, 200] { #expect(tracker.contains(sequence)) }
        for sequence: UInt64 in [0, 69, 71, 102, 199, 201, 10_000] { #expect(!tracker.contains(sequence)) }
    }

    @Test("an empty tracker has no gaps")
    func empty() {
        #expect(SequenceTracker().gaps == 0)
        #expect(!SequenceTracker().contains(1))
    }

    /// Ten events on one channel, sent at 10, 20, … 100 and each answered 1 later.
    static let log: PublishLog = {
        var log = PublishLog(channels: 1)
        log.sendTimes[0] = (1...10).map { UInt64($0 * 10) }
        log.answers[0] = (1...10).map { UInt64($0 * 10 + 1) }
        return log
    }()

    static func record(subscribedAt: UInt64, leftAt: UInt64, received: [UInt64]) -> ClientRecord {
        var tracker = SequenceTracker()
        for sequence in received { tracker.record(sequence) }
        return ClientRecord(channel: 0, subscribedAt: subscribedAt, leftAt: leftAt, sequences: tracker)
    }

    @Test("events sent after the subscription and accepted a margin before leaving are owed")
    func owed() {
        // Subscribed at 25: events 3… are owed; left at 75 with margin 5: events whose answer + 5 < 75, up to 6.
        let complete = Self.record(subscribedAt: 25, leftAt: 75, received: [3, 4, 5, 6, 7])
        let audit = DeliveryAudit(records: [complete], log: Self.log, margin: 5)
        #expect(audit.expected == 4)
        #expect(audit.missing == 0)
        #expect(audit.gaps == 0)
        #expect(audit.expectedBy[0] == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    }

    @Test("a hole in the middle and a missing first event are both found")
    func lost() {
        let holed = Self.record(subscribedAt: 25, leftAt: 75, received: [3, 5, 6])
        let lateStart = Self.record(subscribedAt: 25, leftAt: 75, received: [4, 5, 6])
        let audit = DeliveryAudit(records: [holed, lateStart], log: Self.log, margin: 5)
        #expect(audit.gaps == 1)
        #expect(audit.missing == 2)
        #expect(audit.receivedBy[0][2] == 1)
        #expect(audit.receivedBy[0][3] == 1)
    }

    @Test("failed and unanswered events are owed to nobody")
    func failed() {
        var log = Self.log
        log.answers[0][3] = PublishLog.failed
        log.answers[0][4] = 0
        let record = Self.record(subscribedAt: 25, leftAt: 75, received: [3, 6])
        let audit = DeliveryAudit(records: [record], log: log, margin: 5)
        #expect(audit.expected == 2)
        #expect(audit.missing == 0)
    }
}
