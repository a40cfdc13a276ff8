#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The standard Prometheus process metrics, read at scrape time (from `/proc` on Linux).
struct ProcessMetrics: Sendable, Equatable {
    var residentMemoryBytes: Double = 0
    var cpuSeconds: Double = 0
    var openFileDescriptors: Double = 0
    var startTimeSeconds: Double = 0

    /// When this process first asked, for systems without `/proc`.
    private static let firstRead = Double(time(nil))

    static func read() -> ProcessMetrics {
        var metrics = ProcessMetrics(startTimeSeconds: firstRead)
        var usage = rusage()
        #if os(Linux)
            let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
            let who = RUSAGE_SELF
        #endif
        if getrusage(who, &usage) == 0 {
            metrics.cpuSeconds =
                Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
                + Double(usage.ru_stime.tv_usec) / 1e6
        }
        #if os(Linux)
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            if let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
                // Fields after the command name, starting with field 3 (state).
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 21, let start = Double(fields[19]), let rss = Double(fields[21]) {
                    metrics.residentMemoryBytes = rss * pageSize
                    if let boot = bootTime() { metrics.startTimeSeconds = boot + start / ticks }
                }
            }
            metrics.openFileDescriptors = Double(countEntries("/proc/self/fd"))
        #endif
        return metrics
    }

    #if os(Linux)
        private static func bootTime() -> Double? {
            guard let text = readFile("/proc/stat") else { return nil }
            for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
                return Double(line.dropFirst(6).trimmingPrefix(" "))
            }
            return nil
        }

        private static func readFile(_ path: String) -> String? {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                bytes += chunk[0..<count]
                if bytes.count > 1 << 20 { break }
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        private static func countEntries(_ path: String) -> Int {
            guard let directory = opendir(path) else { return 0 }
            defer { closedir(directory) }
            var count = 0
            let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            while let entry = readdir(directory) {
                // The name's first bytes, read in place: a record readdir returns can be shorter than
                // `dirent`, so copying `entry.pointee.d_name` (256 bytes) could read past it and crash
                // (seen in the bench's twin of this loop).
                let name = UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: UInt8.self)
                if name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0)) {
                    continue
                }
                count += 1
            }
            // The directory being read is one of them.
            return max(0, count - 1)
        }
    #endif
}
