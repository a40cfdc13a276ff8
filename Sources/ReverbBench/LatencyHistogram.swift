import Histogram

/// Latencies in microseconds, 1 µs to 60 s at three significant digits (HdrHistogram).
///
/// A value type: each event loop records into its own copy; `merge` combines them at the end.
struct LatencyHistogram: Sendable {
    static let highestMicroseconds: UInt64 = 60_000_000

    private var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: LatencyHistogram.highestMicroseconds,
        numberOfSignificantValueDigits: .three)

    /// Values recorded, including those clamped to the range.
    var count: UInt64 { histogram.totalCount }

    /// Records a latency given in nanoseconds; values outside 1 µs … 60 s are clamped into it.
    mutating func record(nanoseconds: UInt64) {
        let micros = min(max(nanoseconds / 1000, 1), Self.highestMicroseconds)
        _ = histogram.record(micros)
    }

    mutating func merge(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
    }

    /// The value at `percentile` (0–100) in milliseconds; 0 when empty.
    func milliseconds(atPercentile percentile: Double) -> Double {
        guard count > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    /// The largest recorded value in milliseconds; 0 when empty.
    var maxMilliseconds: Double { count > 0 ? Double(histogram.max) / 1000 : 0 }

    /// The mean in milliseconds; 0 when empty.
    var meanMilliseconds: Double { count > 0 ? histogram.mean / 1000 : 0 }

    /// p50, p90, p99, max in milliseconds, as the reports print them.
    var summary: LatencySummary {
        LatencySummary(
            count: Int(count), p50: milliseconds(atPercentile: 50), p90: milliseconds(atPercentile: 90),
            p99: milliseconds(atPercentile: 99), max: maxMilliseconds)
    }
}

/// A latency distribution reduced to the reported figures, in milliseconds.
struct LatencySummary: Sendable, Codable, Equatable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double
}
