import NIOCore

/// The per-connection fixed-window message limit of `protocol.md` §10.
struct RateLimiter {
    let maxAttempts: Int
    let window: TimeAmount
    private var windowEnd: NIODeadline?
    private var count = 0

    init(maxAttempts: Int, decaySeconds: Int) {
        self.maxAttempts = maxAttempts
        self.window = .seconds(Int64(decaySeconds))
    }

    /// Counts a message; false when it is over the limit (then it is not counted).
    mutating func admit(now: NIODeadline) -> Bool {
        if let windowEnd, now < windowEnd {
            guard count < maxAttempts else { return false }
            count += 1
            return true
        }
        windowEnd = now + window
        count = 1
        return true
    }
}
