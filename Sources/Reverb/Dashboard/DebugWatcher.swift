import NIOConcurrencyHelpers

/// One open debug console's queue: filled by whichever loop the app's activity happens on, drained
/// by the console's stream on its own loop.
final class DebugWatcher: Sendable {
    private let buffer: NIOLockedValueBox<DebugStreamBuffer>

    init(capacity: Int = 1000) {
        buffer = NIOLockedValueBox(DebugStreamBuffer(capacity: capacity))
    }

    func offer(_ event: String) {
        buffer.withLockedValue { _ = $0.push(event) }
    }

    func drain() -> (events: [String], dropped: Int) {
        buffer.withLockedValue { $0.drain() }
    }

    var droppedTotal: Int { buffer.withLockedValue { $0.droppedTotal } }
}
