import Foundation

/// CPU time of this process (getrusage) and, given a pid, of another process (`/proc`).
struct CPUSample: Sendable {
    var wall: Double
    var cpuSeconds: Double

    /// CPU use between two samples as a percentage of one core.
    static func percent(from start: CPUSample, to end: CPUSample) -> Double {
        let wall = end.wall - start.wall
        return wall > 0 ? (end.cpuSeconds - start.cpuSeconds) / wall * 100 : 0
    }
}

enum ResourceUsage {
    static func wallSeconds() -> Double {
        Double(PayloadTimestamp.now()) / 1e9
    }

    /// User + system CPU of this process.
    static func selfCPU() -> CPUSample {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return CPUSample(wall: wallSeconds(), cpuSeconds: user + system)
    }

    /// User + system CPU of `pid` from `/proc/PID/stat`, nil when unreadable.
    static func processCPU(pid: Int32) -> CPUSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return CPUSample(wall: wallSeconds(), cpuSeconds: (user + system) / ticks)
    }

    /// Resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`), nil when unreadable.
    static func residentKiB(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
        }
        return nil
    }

    /// Open file descriptors of `pid` (entries of `/proc/PID/fd`), nil when unreadable.
    static func openFileDescriptors(pid: Int32) -> Int? {
        guard let directory = opendir("/proc/\(pid)/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let entry = readdir(directory) {
            // Only the name's first bytes are read, in place: a record readdir returns can be shorter
            // than `dirent` (the kernel sizes it to the name), so copying `entry.pointee.d_name` read
            // up to 255 bytes past it and crashed when the record ended at a page boundary.
            let name = UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: UInt8.self)
            let isDot = name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            if !isDot { count += 1 }
        }
        return count
    }

    /// Whether `pid` is running: its `/proc` entry exists and it is not a zombie.
    static func isAlive(pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        return state != "Z" && state != "X"
    }

    /// Raises the soft open-file limit to the hard one; returns the new soft limit.
    @discardableResult
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(limit.rlim_cur)
    }
}

extension ResourceUsage {
    /// Wall-clock Unix time in seconds, for `auth_timestamp`.
    static func unixSeconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now.tv_sec
    }
}
