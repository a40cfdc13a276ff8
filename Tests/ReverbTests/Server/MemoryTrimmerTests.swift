import Testing

@testable import Reverb

@Suite("Memory trimmer policy")
struct MemoryTrimmerTests {
    /// Which observations of `counts`, in order, ask for a trim.
    static func trims(_ counts: [Int], policy: inout MemoryTrimmer.Policy) -> [Int] {
        var trimmed: [Int] = []
        for count in counts where policy.observe(connections: count) { trimmed.append(count) }
        return trimmed
    }

    @Test("trims once the count fell by 1,000 and to half its peak, then measures from there")
    func policy() {
        var policy = MemoryTrimmer.Policy()
        // 5,001 is not yet half of 10,000; after the trim at 5,000, 4,000 dropped 1,000 but not to half.
        #expect(Self.trims([0, 10_000, 5_001, 5_000], policy: &policy) == [5_000])
        #expect(policy.peak == 5_000)
        #expect(Self.trims([4_000, 0, 0], policy: &policy) == [0], "nothing new to give back the second time")
    }

    @Test("small servers are never trimmed: the drop must be 1,000 connections")
    func smallDrops() {
        var policy = MemoryTrimmer.Policy()
        #expect(Self.trims([999, 0, 1_500, 400], policy: &policy) == [400])
    }
}
