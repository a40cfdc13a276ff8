/// Every problem found while loading the configuration, one line each (`config.md` §7).
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One problem, its message naming its source: `--port: "99999" is not a port number (0-65535).`
    public struct Problem: Sendable, Hashable {
        public var message: String
        /// True when the bad value came from a command-line flag.
        public var isFromFlag: Bool

        public init(_ message: String, isFromFlag: Bool = false) {
            self.message = message
            self.isFromFlag = isFromFlag
        }
    }

    public var problems: [Problem]
    /// Warnings gathered before the problems stopped loading.
    public var warnings: [String]

    public init(problems: [Problem], warnings: [String] = []) {
        self.problems = problems
        self.warnings = warnings
    }

    /// The messages, in the order found.
    public var messages: [String] { problems.map(\.message) }

    /// 64 (bad command line) when any problem is in a flag, else 78 (bad configuration).
    public var exitCode: Int32 { problems.contains(where: \.isFromFlag) ? 64 : 78 }

    public var description: String { messages.joined(separator: "\n") }
}
