import Testing

@testable import ReverbBench

@Suite("Latency histogram")
struct LatencyHistogramTests {
    @Test("an empty histogram reports zeros")
    func empty() {
        let histogram = LatencyHistogram()
        #expect(histogram.count == 0)
        #expect(histogram.summary == LatencySummary(count: 0, p50: 0, p90: 0, p99: 0, max: 0))
    }

    @Test("percentiles of 1 … 100 ms are within HdrHistogram's three digits")
    func percentiles() {
        var histogram = LatencyHistogram()
        for millisecond in 1...100 { histogram.record(nanoseconds: UInt64(millisecond) * 1_000_000) }
        let summary = histogram.summary
        #expect(summary.count == 100)
        #expect(abs(summary.p50 - 50) < 0.1)
        #expect(abs(summary.p90 - 90) < 0.1)
        #expect(abs(summary.p99 - 99) < 0.1)
        #expect(abs(summary.max - 100) < 0.1)
    }

    @Test("sub-microsecond and huge values are clamped, not dropped")
    func clamping() {
        var histogram = LatencyHistogram()
        histogram.record(nanoseconds: 10)
        histogram.record(nanoseconds: 3_600_000_000_000)
        #expect(histogram.count == 2)
        #expect(histogram.milliseconds(atPercentile: 0) == 0.001)
        #expect(abs(histogram.maxMilliseconds - 60_000) < 60)
    }

    @Test("merging keeps every value of both loops")
    func merge() {
        var first = LatencyHistogram()
        var second = LatencyHistogram()
        for _ in 0..<99 { first.record(nanoseconds: 1_000_000) }
        second.record(nanoseconds: 20_000_000)
        first.merge(second)
        #expect(first.count == 100)
        #expect(abs(first.summary.p50 - 1) < 0.01)
        #expect(abs(first.summary.max - 20) < 0.05)
    }
}
