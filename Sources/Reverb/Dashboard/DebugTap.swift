import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Where an app's activity meets its debug consoles (docs.md "Dashboard").
///
/// The hot path asks `record { … }`: one relaxed atomic load while nobody watches, and the event is
/// not even built. It is active while a console of this node watches the app, or while another
/// node of the cluster said recently that one of its consoles does (then events are also
/// forwarded over the bus). A remote watch that went stale is noticed by the next event, which
/// turns the tap off.
final class DebugTap: Sendable {
    /// How long a peer's "somebody watches" lasts without being repeated.
    static let remoteWatchLifetime = TimeAmount.seconds(5)

    private struct State {
        var watchers: [ObjectIdentifier: DebugWatcher] = [:]
        var remoteWatchUntil: NIODeadline?
        /// Publishes an event's JSON text to the other nodes (set in a cluster).
        var forward: (@Sendable (String) -> Void)?
        /// This node's id in events (empty on a single node).
        var node = ""
    }

    private let active = Atomic<Bool>(false)
    private let state = NIOLockedValueBox(State())
    private let clock: @Sendable () -> NIODeadline

    init(clock: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.clock = clock
    }

    /// Whether events are wanted right now (a relaxed read: an event racing a console's opening may
    /// be missed, never one after it).
    @inline(__always)
    var isActive: Bool { active.load(ordering: .relaxed) }

    /// Builds and publishes the event only while somebody watches.
    @inline(__always)
    func record(_ make: () -> DebugEvent) {
        guard active.load(ordering: .relaxed) else { return }
        publish(make())
    }

    /// Sends `event` to this node's consoles of the app and, while a peer watches, to the bus.
    func publish(_ event: DebugEvent) {
        let now = clock()
        let (watchers, forward, node) = state.withLockedValue { state in
            if let until = state.remoteWatchUntil, now >= until { state.remoteWatchUntil = nil }
            let forward = state.remoteWatchUntil == nil ? nil : state.forward
            if state.watchers.isEmpty && forward == nil { active.store(false, ordering: .relaxed) }
            return (Array(state.watchers.values), forward, state.node)
        }
        guard !watchers.isEmpty || forward != nil else { return }
        let text = event.json(node: node, timeMilliseconds: ClusterNode.wallClockMilliseconds())
        for watcher in watchers { watcher.offer(text) }
        forward?(text)
    }

    /// An event another node forwarded: to this node's consoles only.
    func deliverRemote(_ text: String) {
        for watcher in state.withLockedValue({ Array($0.watchers.values) }) { watcher.offer(text) }
    }

    func add(_ watcher: DebugWatcher) {
        state.withLockedValue { state in
            state.watchers[ObjectIdentifier(watcher)] = watcher
            active.store(true, ordering: .relaxed)
        }
    }

    func remove(_ watcher: DebugWatcher) {
        state.withLockedValue { state in
            state.watchers[ObjectIdentifier(watcher)] = nil
            if state.watchers.isEmpty && state.remoteWatchUntil == nil { active.store(false, ordering: .relaxed) }
        }
    }

    /// This node's consoles of the app.
    var localWatcherCount: Int { state.withLockedValue { $0.watchers.count } }

    /// A peer said one of its consoles watches this app: forward events for a while.
    func remoteWatchHeard() {
        let until = clock() + Self.remoteWatchLifetime
        state.withLockedValue { state in
            guard state.forward != nil else { return }
            state.remoteWatchUntil = until
            active.store(true, ordering: .relaxed)
        }
    }

    /// In a cluster: how events reach the other nodes, and this node's id in events.
    func connect(node: String, forward: @escaping @Sendable (String) -> Void) {
        state.withLockedValue { state in
            state.node = node
            state.forward = forward
        }
    }
}
