import NIOCore

/// The open plain-HTTP connections of one server, kept per event loop, so that graceful shutdown
/// can quiesce them (`HTTPConnectionStateMachine.quiesce()`).
///
/// Each loop's set is touched only on that loop, when a connection opens, closes or upgrades; no lock.
final class HTTPConnectionRegistry: Sendable {
    private struct Entry: Sendable {
        let eventLoop: any EventLoop
        let handlers: NIOLoopBoundBox<[ObjectIdentifier: HTTPServerHandler]>
    }

    private let entries: [Entry]

    init(eventLoops: [any EventLoop]) {
        self.entries = eventLoops.map { loop in
            Entry(eventLoop: loop, handlers: .makeBoxSendingValue([:], eventLoop: loop))
        }
    }

    /// Adds `handler`; on `eventLoop`. A loop this registry does not know is ignored.
    func add(_ handler: HTTPServerHandler, on eventLoop: any EventLoop) {
        entry(for: eventLoop)?.handlers.value[ObjectIdentifier(handler)] = handler
    }

    /// Removes `handler`; on `eventLoop`.
    func remove(_ handler: HTTPServerHandler, on eventLoop: any EventLoop) {
        entry(for: eventLoop)?.handlers.value[ObjectIdentifier(handler)] = nil
    }

    /// Quiesces every registered connection on its own loop and waits until all of them have
    /// closed, or `timeout` has passed (a request still arriving slowly is not waited for longer).
    func quiesceAll(timeout: TimeAmount) async {
        guard let first = entries.first else { return }
        let perLoop = entries.map { entry in
            entry.eventLoop.submit { () -> [EventLoopFuture<Void>] in
                entry.handlers.value.values.compactMap { $0.quiesce() }
            }
        }
        var closed: [EventLoopFuture<Void>] = []
        for future in perLoop {
            closed += (try? await future.get()) ?? []
        }
        guard !closed.isEmpty else { return }
        let done = first.eventLoop.makePromise(of: Void.self)
        EventLoopFuture.andAllComplete(closed, on: first.eventLoop).cascade(to: done)
        let timer = first.eventLoop.scheduleTask(in: timeout) { done.succeed() }
        try? await done.futureResult.get()
        timer.cancel()
    }

    private func entry(for eventLoop: any EventLoop) -> Entry? {
        entries.first { $0.eventLoop === eventLoop }
    }
}
