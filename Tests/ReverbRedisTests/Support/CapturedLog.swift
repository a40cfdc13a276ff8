import Logging
import NIOConcurrencyHelpers

/// A `Logger` whose messages (with their metadata) are kept, for tests that ask why a client did
/// something rather than only whether it did.
final class CapturedLog: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// Every message so far, as `message key=value ...`.
    var all: [String] { lines.withLockedValue { $0 } }

    /// A logger writing here (at `.debug` and above).
    var logger: Logger {
        var logger = Logger(label: "test-capture") { _ in Handler(lines: self.lines) }
        logger.logLevel = .debug
        return logger
    }

    private struct Handler: LogHandler {
        let lines: NIOLockedValueBox<[String]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.withLockedValue { $0.append(([event.message.description] + fields).joined(separator: " ")) }
        }
    }
}
