/// Checks what subscribers received against what was published.
///
/// Two rules per subscriber record: the numbers it received on its channel are contiguous between
/// the lowest and the highest (`gaps` counts the holes), and every event published after its
/// subscription was confirmed and accepted by the server at least `margin` before it began to leave
/// reached it (`missing`). The second is stricter: it also catches an event lost at either end.
struct DeliveryAudit {
    var records = 0
    /// (record, event) pairs the strict rule expects.
    var expected = 0
    /// Of those, never received.
    var missing = 0
    /// Holes between the lowest and highest number received.
    var gaps = 0
    var outOfOrder = 0
    var duplicates = 0
    /// Per channel and sequence number − 1: records that expected the event, and those that got it.
    var expectedBy: [[Int32]]
    var receivedBy: [[Int32]]

    init(records: [ClientRecord], log: PublishLog, margin: UInt64) {
        expectedBy = log.sendTimes.map { Array(repeating: 0, count: $0.count) }
        receivedBy = expectedBy
        for record in records where record.channel >= 0 && record.channel < log.sendTimes.count {
            self.records += 1
            gaps += record.sequences.gaps
            outOfOrder += record.sequences.outOfOrder
            duplicates += record.sequences.duplicates
            let sendTimes = log.sendTimes[record.channel]
            // The first event sent after the subscription was confirmed (send times only grow).
            var low = 0
            var high = sendTimes.count
            while low < high {
                let middle = (low + high) / 2
                if sendTimes[middle] <= record.subscribedAt { low = middle + 1 } else { high = middle }
            }
            var index = low
            while index < sendTimes.count && sendTimes[index] < record.leftAt {
                if let accepted = log.accepted(channel: record.channel, sequence: index + 1),
                    accepted &+ margin < record.leftAt
                {
                    expected += 1
                    expectedBy[record.channel][index] += 1
                    if record.sequences.contains(UInt64(index + 1)) {
                        receivedBy[record.channel][index] += 1
                    } else {
                        missing += 1
                    }
                }
                index += 1
            }
        }
    }
}
