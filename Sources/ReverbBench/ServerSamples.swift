import Foundation

/// RSS and open file descriptors of each watched server process, sampled over a run: the first
/// sample, the peak, any named sample, and the whole series for the JSON report.
struct ServerSamples {
    struct Sample: Sendable {
        var residentKiB: Int?
        var descriptors: Int?
    }

    let pids: [Int32]
    private(set) var first: [Sample] = []
    private(set) var peakResidentKiB: [Int] = []
    private(set) var peakDescriptors: [Int] = []
    private(set) var series: [String: [Double]] = [:]
    private let origin = PayloadTimestamp.now()

    init(pids: [Int32]) {
        self.pids = pids
        peakResidentKiB = Array(repeating: 0, count: pids.count)
        peakDescriptors = Array(repeating: 0, count: pids.count)
    }

    static func read(_ pid: Int32) -> Sample {
        Sample(
            residentKiB: ResourceUsage.residentKiB(pid: pid), descriptors: ResourceUsage.openFileDescriptors(pid: pid))
    }

    /// Samples every pid now, adds the figures (and `extra` columns) to the series and returns them.
    @discardableResult
    mutating func sample(extra: [String: Double] = [:]) -> [Sample] {
        let samples = pids.map(Self.read)
        if first.isEmpty { first = samples }
        series["t_s", default: []].append(Double(PayloadTimestamp.now() - origin) / 1e9)
        for (index, (pid, sample)) in zip(pids, samples).enumerated() {
            peakResidentKiB[index] = max(peakResidentKiB[index], sample.residentKiB ?? 0)
            peakDescriptors[index] = max(peakDescriptors[index], sample.descriptors ?? 0)
            series["rss_kib_\(pid)", default: []].append(Double(sample.residentKiB ?? -1))
            series["fds_\(pid)", default: []].append(Double(sample.descriptors ?? -1))
        }
        for (name, value) in extra { series[name, default: []].append(value) }
        return samples
    }

    /// `pid 1234: 85.1 MiB, 10021 fds` for each pid.
    static func describe(_ samples: [Sample], pids: [Int32]) -> String {
        zip(pids, samples).map { pid, sample in
            let rss = sample.residentKiB.map { String(format: "%.1f MiB", Double($0) / 1024) } ?? "? MiB"
            return "pid \(pid): \(rss), \(sample.descriptors.map(String.init) ?? "?") fds"
        }.joined(separator: "; ")
    }
}
