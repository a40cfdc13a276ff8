/// What one debug console has not been sent yet: at most `capacity` events; past that, new events
/// are dropped and counted, and the console is told how many it missed.
struct DebugStreamBuffer {
    let capacity: Int
    private(set) var pending: [String] = []
    /// Dropped since the last `drain()`.
    private(set) var droppedSinceDrain = 0
    /// Dropped since the console opened.
    private(set) var droppedTotal = 0

    init(capacity: Int = 1000) {
        self.capacity = capacity
        pending.reserveCapacity(min(capacity, 64))
    }

    /// Queues one event's JSON text; false (and counted) when full.
    @discardableResult
    mutating func push(_ event: String) -> Bool {
        guard pending.count < capacity else {
            droppedSinceDrain += 1
            droppedTotal += 1
            return false
        }
        pending.append(event)
        return true
    }

    /// Everything queued, and how many were dropped since the last drain.
    mutating func drain() -> (events: [String], dropped: Int) {
        defer {
            pending.removeAll(keepingCapacity: pending.count <= 64)
            droppedSinceDrain = 0
        }
        return (pending, droppedSinceDrain)
    }
}
