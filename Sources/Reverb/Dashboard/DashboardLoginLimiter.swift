import NIOCore

/// Failed dashboard logins per client address: after `maxFailures` in a window, every login from
/// that address is refused (`429`, even with the right credentials) until the window ends.
///
/// Pure: time is passed in. Bounded: at most `maxAddresses` are tracked; when full, expired windows
/// are dropped first, then the oldest window, so a flood of addresses cannot grow it.
struct DashboardLoginLimiter {
    struct Window {
        var start: NIODeadline
        var failures: Int
    }

    let maxFailures: Int
    let window: TimeAmount
    let maxAddresses: Int
    private(set) var windows: [String: Window] = [:]

    init(maxFailures: Int = 5, window: TimeAmount = .seconds(60), maxAddresses: Int = 10_000) {
        self.maxFailures = maxFailures
        self.window = window
        self.maxAddresses = maxAddresses
    }

    /// Seconds until `address` may try again; nil when it may try now.
    func retryAfter(address: String, now: NIODeadline) -> Int64? {
        guard let entry = windows[address], entry.failures >= maxFailures else { return nil }
        let end = entry.start + window
        guard now < end else { return nil }
        return max(1, (end - now).nanoseconds / 1_000_000_000 + 1)
    }

    /// Counts a failed login of `address`.
    mutating func recordFailure(address: String, now: NIODeadline) {
        if var entry = windows[address], now < entry.start + window {
            entry.failures += 1
            windows[address] = entry
            return
        }
        if windows[address] == nil && windows.count >= maxAddresses { makeRoom(now: now) }
        windows[address] = Window(start: now, failures: 1)
    }

    /// A successful login forgets the address's failures.
    mutating func recordSuccess(address: String) {
        windows[address] = nil
    }

    private mutating func makeRoom(now: NIODeadline) {
        let window = self.window
        windows = windows.filter { now < $0.value.start + window }
        if windows.count >= maxAddresses, let oldest = windows.min(by: { $0.value.start < $1.value.start }) {
            windows[oldest.key] = nil
        }
    }
}
