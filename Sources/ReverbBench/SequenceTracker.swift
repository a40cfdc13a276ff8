/// The sequence numbers one subscriber received on its channel, as a bitset from the lowest seen:
/// enough to tell gaps, duplicates and late arrivals apart without keeping every number.
struct SequenceTracker: Sendable, Equatable {
    /// The lowest number received; meaningful when `count > 0`.
    private(set) var lowest: UInt64 = 0
    /// The highest number received; meaningful when `count > 0`.
    private(set) var highest: UInt64 = 0
    /// Distinct numbers received.
    private(set) var count = 0
    /// Numbers received again.
    private(set) var duplicates = 0
    /// Numbers that arrived after a higher one.
    private(set) var outOfOrder = 0
    /// Bit `i` of the words is number `base + i`; `base` is a multiple of 64.
    private var base: UInt64 = 0
    private var words: [UInt64] = []

    mutating func record(_ sequence: UInt64) {
        if count == 0 {
            base = sequence & ~63
            words = [0]
            lowest = sequence
            highest = sequence
        } else if sequence < base {
            let newBase = sequence & ~63
            words.insert(contentsOf: repeatElement(0, count: Int((base - newBase) / 64)), at: 0)
            base = newBase
        }
        let offset = Int(sequence - base)
        let word = offset / 64
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
        let bit: UInt64 = 1 << UInt64(offset % 64)
        if words[word] & bit != 0 {
            duplicates += 1
            return
        }
        words[word] |= bit
        if count > 0 && sequence < highest { outOfOrder += 1 }
        count += 1
        lowest = min(lowest, sequence)
        highest = max(highest, sequence)
    }

    func contains(_ sequence: UInt64) -> Bool {
        guard count > 0, sequence >= base else { return false }
        let offset = Int(sequence - base)
        guard offset / 64 < words.count else { return false }
        return words[offset / 64] & (1 << UInt64(offset % 64)) != 0
    }

    /// Numbers missing between the lowest and the highest received: deliveries lost mid-stream.
    var gaps: Int { count == 0 ? 0 : Int(highest - lowest + 1) - count }
}
