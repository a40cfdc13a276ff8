/// Redis settings that cannot be used; each problem names its setting (spec `config.md` §7).
public struct RedisSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One message per problem, e.g. `REDIS_URL: port 99999 is out of range (1-65535)`.
    public let problems: [String]

    /// An error listing `problems`, one message each.
    public init(problems: [String]) {
        self.problems = problems
    }

    /// The problems, one per line.
    public var description: String { problems.joined(separator: "\n") }
}
