import ReverbRedis
import Testing

/// One row of spec `scaling.md` §6.5.
struct SettingsExample: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        case endpoint(RedisConnectionConfiguration, timeout: Duration = .seconds(60))
        case error(String)
    }

    var row: String
    var settings: RedisSettings
    var outcome: Outcome

    var testDescription: String { "row \(row)" }
}

private typealias Config = RedisConnectionConfiguration

@Suite("RedisClientFactory settings parsing")
struct RedisClientFactoryTests {
    static let examples: [SettingsExample] = [
        .init(row: "1", settings: RedisSettings(), outcome: .endpoint(Config(), timeout: .seconds(60))),
        .init(
            row: "2",
            settings: RedisSettings(host: "redis.internal", port: "6380", password: "secret", database: "2"),
            outcome: .endpoint(
                Config(endpoint: .tcp(host: "redis.internal", port: 6380), password: "secret", database: 2))
        ),
        .init(
            row: "3",
            settings: RedisSettings(username: "reverb", password: "s3cret"),
            outcome: .endpoint(Config(username: "reverb", password: "s3cret"))
        ),
        .init(
            row: "4",
            settings: RedisSettings(host: "cache.example.com", scheme: "tls"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.example.com", port: 6379), tls: .init()))
        ),
        .init(
            row: "5",
            settings: RedisSettings(url: "redis://u:p%40ss@10.0.0.5:6380/4"),
            outcome: .endpoint(
                Config(endpoint: .tcp(host: "10.0.0.5", port: 6380), username: "u", password: "p@ss", database: 4)
            )
        ),
        .init(
            row: "6",
            settings: RedisSettings(url: "rediss://:pw@cache.local"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), password: "pw", tls: .init()))
        ),
        .init(
            row: "7",
            settings: RedisSettings(url: "redis://cache.local:6379/1?database=7"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), database: 7))
        ),
        .init(
            row: "8",
            settings: RedisSettings(url: "redis://cache.local?db=3"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), database: 3))
        ),
        .init(
            row: "9",
            settings: RedisSettings(url: "redis://cache.local", scheme: "tls"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379)))
        ),
        .init(
            row: "10",
            settings: RedisSettings(url: "tls://h:asdfqwer1234asdf@ec2-111-1-1-1.compute-1.amazonaws.com:111"),
            outcome: .endpoint(
                Config(
                    endpoint: .tcp(host: "ec2-111-1-1-1.compute-1.amazonaws.com", port: 111),
                    username: "h",
                    password: "asdfqwer1234asdf",
                    tls: .init()
                )
            )
        ),
        .init(
            row: "11",
            settings: RedisSettings(url: "redis://cache.local", port: "6380"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6380)))
        ),
        .init(
            row: "12",
            settings: RedisSettings(url: "redis://cache.local", password: "secret"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), password: "secret"))
        ),
        .init(
            row: "13",
            settings: RedisSettings(url: "redis://h:pw@cache.local:111/", database: "2"),
            outcome: .endpoint(
                Config(endpoint: .tcp(host: "cache.local", port: 111), username: "h", password: "pw", database: 2)
            )
        ),
        .init(
            row: "14",
            settings: RedisSettings(url: "redis://[::1]:6380"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "::1", port: 6380)))
        ),
        .init(
            row: "15",
            settings: RedisSettings(url: "redis://:fromuser@cache.local?password=fromquery"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), password: "fromquery"))
        ),
        .init(
            row: "16a",
            settings: RedisSettings(url: "redis://:a+b@cache.local"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), password: "a+b"))
        ),
        .init(
            row: "16b",
            settings: RedisSettings(url: "redis://cache.local?password=a+b%2Bc"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379), password: "a b+c"))
        ),
        .init(
            row: "17",
            settings: RedisSettings(url: "redis://user%3Aname:pa%2Fss@cache.local"),
            outcome: .endpoint(
                Config(endpoint: .tcp(host: "cache.local", port: 6379), username: "user:name", password: "pa/ss")
            )
        ),
        .init(
            row: "18",
            settings: RedisSettings(url: "redis://cache.local?timeout=5"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6379)), timeout: .seconds(5))
        ),
        .init(
            row: "19",
            settings: RedisSettings(url: "//:pw@cache.local:6390", scheme: "tls"),
            outcome: .endpoint(Config(endpoint: .tcp(host: "cache.local", port: 6390), password: "pw", tls: .init()))
        ),
        .init(
            row: "20",
            settings: RedisSettings(url: "unix:///var/run/redis/redis.sock?database=1&password=pw"),
            outcome: .endpoint(
                Config(endpoint: .unixSocket(path: "/var/run/redis/redis.sock"), password: "pw", database: 1)
            )
        ),
        .init(
            row: "21",
            settings: RedisSettings(host: "/var/run/redis/redis.sock"),
            outcome: .endpoint(Config(endpoint: .unixSocket(path: "/var/run/redis/redis.sock")))
        ),
        .init(
            row: "22",
            settings: RedisSettings(url: "http://cache.local"),
            outcome: .error("REDIS_URL: unsupported scheme \"http\" (use redis, rediss, tcp, tls or unix)")
        ),
        .init(
            row: "23",
            settings: RedisSettings(url: "redis://cache.local:99999"),
            outcome: .error("REDIS_URL: port 99999 is out of range (1-65535)")
        ),
        .init(
            row: "24",
            settings: RedisSettings(url: "redis://cache.local/abc"),
            outcome: .error("REDIS_URL: database \"abc\" is not a non-negative integer")
        ),
        .init(
            row: "25",
            settings: RedisSettings(url: "rediss://cache.local", tlsVerifyPeer: "false"),
            outcome: .endpoint(
                Config(endpoint: .tcp(host: "cache.local", port: 6379), tls: .init(verifyPeer: false))
            )
        ),
    ]

    @Test("scaling.md §6.5 examples", arguments: examples)
    func example(_ example: SettingsExample) throws {
        switch example.outcome {
        case .endpoint(let expected, let timeout):
            let factory = try RedisClientFactory(settings: example.settings)
            #expect(factory.configuration == expected)
            #expect(factory.timeout == timeout)
            #expect(factory.warnings.isEmpty)
        case .error(let message):
            let error = #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: example.settings) }
            #expect(error?.problems == [message])
        }
    }

    @Test func emptyStringsCountAsUnset() throws {
        let factory = try RedisClientFactory(
            settings: RedisSettings(url: "", host: "", port: "", username: "", password: "", database: "", scheme: "")
        )
        #expect(factory.configuration == Config())
    }

    @Test func errorsNameTheConfigFileKeyWhenTheValueCameFromThere() {
        let settings = RedisSettings(url: "ftp://cache.local", names: .configFile())
        let error = #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: settings) }
        #expect(
            error?.problems == [
                "config/reverb.json: servers.reverb.scaling.server.url: unsupported scheme \"ftp\" (use redis, rediss, tcp, tls or unix)"
            ]
        )
    }

    @Test func everyProblemIsReported() {
        let settings = RedisSettings(
            port: "80a",
            database: "-1",
            timeout: "0",
            connectTimeout: "2s",
            tlsVerifyPeer: "maybe"
        )
        let error = #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: settings) }
        #expect(
            error?.problems == [
                "REDIS_PORT: port \"80a\" is not a number (1-65535)",
                "REDIS_DB: database \"-1\" is not a non-negative integer",
                "REDIS_TIMEOUT: timeout \"0\" is not a positive number of seconds",
                "REDIS_CONNECT_TIMEOUT: connect_timeout \"2s\" is not a positive number of seconds",
                "REDIS_TLS_VERIFY_PEER: TLS settings need a TLS connection (rediss://, tls:// or scheme tls)",
            ]
        )
    }

    @Test func discreteValuesAreValidatedToo() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(port: "70000", scheme: "sentinel"))
        }
        #expect(
            error?.problems == ["REDIS_SCHEME: unsupported scheme \"sentinel\" (use redis, rediss, tcp, tls or unix)"])
        let portError = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(port: "70000"))
        }
        #expect(portError?.problems == ["REDIS_PORT: port 70000 is out of range (1-65535)"])
    }

    @Test func invalidURLIsRejectedWithoutEchoingIt() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(url: "cache.local:6379"))
        }
        #expect(
            error?.problems == [
                "REDIS_URL: not a valid Redis URL (expected redis://[user:password@]host[:port][/database])"
            ]
        )
    }

    @Test func warningsAreReturnedNotPrinted() throws {
        let factory = try RedisClientFactory(
            settings: RedisSettings(url: "redis://cache.local?foo=1&connect_timeout=0.5", username: "reverb")
        )
        #expect(
            factory.warnings == [
                "REDIS_URL: unknown query key \"foo\" ignored",
                "REDIS_USERNAME: a username without a password is ignored (no AUTH)",
            ]
        )
        #expect(factory.configuration.username == nil)
        #expect(factory.configuration.connectTimeout == .milliseconds(500))
    }

    @Test func clientCertificateNeedsItsKey() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(scheme: "rediss", tlsCert: "client.pem"))
        }
        #expect(error?.problems == ["REDIS_TLS_CERT is set but REDIS_TLS_KEY is not"])
    }

    @Test func unreadableTLSFileFailsAtStartup() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(scheme: "tls", tlsCA: "/nonexistent/ca.pem"))
        }
        #expect(error?.problems == ["REDIS_TLS_CA: cannot read \"/nonexistent/ca.pem\": No such file or directory."])
    }
}

@Suite("Redis settings found by fuzzing")
struct RedisSettingsFuzzRegressionTests {
    @Test("a timeout of 25 digits is a problem naming the setting, not a trap")
    func hugeTimeout() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(url: "redis://127.0.0.1?timeout=1000000000000000000000000"))
        }
        #expect(error?.problems.contains { $0.contains("more than a year") } == true, "\(String(describing: error))")
    }

    /// `Fuzz/FuzzRedisURL/regressions/empty-bracketed-host`: `REDIS_HOST=[]` became an empty host
    /// name that only failed when the first connection was attempted.
    @Test("an empty bracketed host is a problem naming the setting")
    func emptyBracketedHost() {
        let error = #expect(throws: RedisSettingsError.self) {
            try RedisClientFactory(settings: RedisSettings(host: "[]"))
        }
        #expect(error?.problems == ["REDIS_HOST: host \"[]\" names no address"])
    }
}
