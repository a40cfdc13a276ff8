import ReverbRedis
import Testing

@testable import Reverb

/// One key: its variable, where it sits in the file, three distinct valid values (for the file, `.env`
/// and the environment) and how to read the result back as text.
struct KeyCase: Sendable, CustomTestStringConvertible {
    var variable: String
    var filePath: [String]
    var values: [String]
    var expected: [String]
    var read: @Sendable (ReverbConfiguration) -> String?

    init(
        _ variable: String,
        _ filePath: [String],
        _ values: [String],
        expected: [String]? = nil,
        read: @escaping @Sendable (ReverbConfiguration) -> String?
    ) {
        self.variable = variable
        self.filePath = filePath
        self.values = values
        self.expected = expected ?? values
        self.read = read
    }

    var testDescription: String { variable }
}

private let server = ["servers", "reverb"]
private let scaling = server + ["scaling"]
private let redis = scaling + ["server"]

@Suite struct ConfigurationPrecedenceTests {
    /// Loads with the environment app defined, so a config file without apps is complete.
    private func load(
        environment: [String: String] = [:],
        dotEnv: String? = nil,
        file: String? = nil,
        flags: ConfigurationFlags = ConfigurationFlags()
    ) throws(ConfigurationError) -> ReverbConfiguration {
        try loadConfiguration(
            environment: environment.merging(environmentAppCredentials) { current, _ in current },
            dotEnv: dotEnv,
            file: file,
            flags: flags
        )
    }

    static let serverKeys: [KeyCase] = [
        KeyCase("REVERB_SERVER_HOST", server + ["host"], ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) { $0.server.host },
        KeyCase("REVERB_SERVER_PORT", server + ["port"], ["8081", "8082", "0"]) { "\($0.server.port)" },
        KeyCase("REVERB_SERVER_PATH", server + ["path"], ["/a/", "b", "c/d"], expected: ["a", "b", "c/d"]) {
            $0.server.path
        },
        KeyCase("REVERB_HOST", server + ["hostname"], ["a.test", "b.test", "c.test"]) { $0.server.hostname },
        KeyCase("REVERB_MAX_REQUEST_SIZE", server + ["max_request_size"], ["1", "2", "3"]) {
            "\($0.server.maxRequestSize)"
        },
        KeyCase("REVERB_PULSE_INGEST_INTERVAL", server + ["pulse_ingest_interval"], ["1", "2", "3"]) {
            "\($0.server.pulseIngestInterval)"
        },
        KeyCase("REVERB_TELESCOPE_INGEST_INTERVAL", server + ["telescope_ingest_interval"], ["1", "2", "3"]) {
            "\($0.server.telescopeIngestInterval)"
        },
        KeyCase("REVERB_RESTART_FILE", server + ["restart_file"], ["/a", "/b", "/c"]) { $0.restartFile },
        KeyCase("REVERB_LOG_LEVEL", server + ["log_level"], ["trace", "warning", "error"]) { "\($0.logLevel)" },
        KeyCase("REVERB_METRICS_TOKEN", server + ["metrics", "token"], ["t1", "t2", "t3"]) { $0.metrics.token },
        KeyCase("REVERB_TLS_CERT", server + ["options", "tls", "local_cert"], ["a.pem", "b.pem", "c.pem"]) {
            $0.server.tls?.certificatePath
        },
        KeyCase(
            "REVERB_SCALING_ENABLED", scaling + ["enabled"], ["yes", "off", "on"], expected: ["true", "false", "true"]
        ) {
            "\($0.scaling.enabled)"
        },
        KeyCase("REVERB_SCALING_CHANNEL", scaling + ["channel"], ["c1", "c2", "c3"]) { $0.scaling.channel },
        KeyCase(
            "REVERB_SCALING_QUERY_TIMEOUT", scaling + ["query_timeout"], ["0.5", "1.5", "3"],
            expected: ["0.5", "1.5", "3.0"]
        ) {
            "\($0.scaling.queryTimeout)"
        },
        KeyCase("REVERB_SCALING_QUEUE_SIZE", scaling + ["queue_size"], ["1", "2", "3"]) { "\($0.scaling.queueSize)" },
        KeyCase("REVERB_SCALING_TRANSPORT", scaling + ["transport"], ["streams", "pubsub", "streams"]) {
            $0.scaling.transport.rawValue
        },
        KeyCase("REVERB_SCALING_STREAM_LENGTH", scaling + ["stream_length"], ["1000", "2000", "3000"]) {
            "\($0.scaling.streamLength)"
        },
        KeyCase(
            "REVERB_SCALING_REPLAY_WINDOW", scaling + ["replay_window"], ["5", "10", "30"],
            expected: ["5.0", "10.0", "30.0"]
        ) {
            "\($0.scaling.replayWindow)"
        },
        KeyCase(
            "REVERB_SCALING_EXIT_ON_TIMEOUT", scaling + ["exit_on_timeout"], ["1", "0", "true"],
            expected: ["true", "false", "true"]
        ) {
            "\($0.scaling.exitOnTimeout)"
        },
        KeyCase("REDIS_URL", redis + ["url"], ["redis://a", "redis://b", "redis://c"]) { $0.scaling.redis.url },
        KeyCase("REDIS_HOST", redis + ["host"], ["h1", "h2", "h3"]) { $0.scaling.redis.host },
        KeyCase("REDIS_PORT", redis + ["port"], ["1", "2", "not-validated-here"]) { $0.scaling.redis.port },
        KeyCase("REDIS_USERNAME", redis + ["username"], ["u1", "u2", "u3"]) { $0.scaling.redis.username },
        KeyCase("REDIS_PASSWORD", redis + ["password"], ["p1", "p2", "p3"]) { $0.scaling.redis.password },
        KeyCase("REDIS_DB", redis + ["database"], ["1", "2", "3"]) { $0.scaling.redis.database },
        KeyCase("REDIS_TIMEOUT", redis + ["timeout"], ["1", "2", "3"]) { $0.scaling.redis.timeout },
        KeyCase("REDIS_SCHEME", redis + ["scheme"], ["tcp", "tls", "unix"]) { $0.scaling.redis.scheme },
        KeyCase("REDIS_CONNECT_TIMEOUT", redis + ["connect_timeout"], ["1", "2", "3"]) {
            $0.scaling.redis.connectTimeout
        },
        KeyCase("REDIS_TLS_CA", redis + ["tls", "ca_file"], ["a", "b", "c"]) { $0.scaling.redis.tlsCA },
        KeyCase("REDIS_TLS_CERT", redis + ["tls", "cert_file"], ["a", "b", "c"]) { $0.scaling.redis.tlsCert },
        KeyCase("REDIS_TLS_KEY", redis + ["tls", "key_file"], ["a", "b", "c"]) { $0.scaling.redis.tlsKey },
        KeyCase("REDIS_TLS_VERIFY_PEER", redis + ["tls", "verify_peer"], ["a", "b", "c"]) {
            $0.scaling.redis.tlsVerifyPeer
        },
    ]

    /// Config file, then `.env` over it, then the environment over both.
    @Test(arguments: serverKeys)
    func fileThenDotEnvThenEnvironment(key: KeyCase) throws {
        let file = nestedJSON(key.filePath, "\"\(key.values[0])\"")
        let dotEnv = "\(key.variable)=\(key.values[1])"
        let environment = [key.variable: key.values[2]]

        #expect(key.read(try load(file: file)) == key.expected[0])
        #expect(key.read(try load(dotEnv: dotEnv, file: file)) == key.expected[1])
        #expect(key.read(try load(environment: environment, dotEnv: dotEnv, file: file)) == key.expected[2])
        #expect(key.read(try load(environment: environment)) == key.expected[2])
        #expect(key.read(try load(dotEnv: dotEnv)) == key.expected[1])
    }

    /// An empty value falls through to the next source.
    @Test(arguments: serverKeys)
    func emptyValuesFallThrough(key: KeyCase) throws {
        let file = nestedJSON(key.filePath, "\"\(key.values[0])\"")
        let configuration = try load(
            environment: [key.variable: ""],
            dotEnv: "\(key.variable)=\"\"",
            file: file
        )
        #expect(key.read(configuration) == key.expected[0])
    }

    @Test(arguments: [
        ("--host", "REVERB_SERVER_HOST", "10.1.1.1", "127.0.0.1"),
        ("--port", "REVERB_SERVER_PORT", "1234", "4321"),
        ("--path", "REVERB_SERVER_PATH", "env", "flag"),
        ("--hostname", "REVERB_HOST", "env.test", "flag.test"),
    ])
    func flagsBeatEverything(flag: String, variable: String, environmentValue: String, flagValue: String) throws {
        var flags = ConfigurationFlags()
        switch flag {
        case "--host": flags.host = flagValue
        case "--port": flags.port = flagValue
        case "--path": flags.path = flagValue
        default: flags.hostname = flagValue
        }
        let file = nestedJSON(server, #"{"host": "1.1.1.1", "port": 1, "path": "file", "hostname": "file.test"}"#)
        let configuration = try load(
            environment: [variable: environmentValue],
            dotEnv: "\(variable)=\(environmentValue)",
            file: file,
            flags: flags
        )
        let server = configuration.server
        let values = [server.host, "\(server.port)", server.path, server.hostname ?? ""]
        #expect(values.contains(flagValue))
        #expect(!values.contains(environmentValue))
    }

    @Test func defaults() throws {
        let configuration = try load(environment: ["TMPDIR": "/var/tmp/"])
        #expect(configuration.server == ServerConfiguration())
        #expect(configuration.server.host == "0.0.0.0")
        #expect(configuration.server.port == 8080)
        #expect(configuration.server.maxRequestSize == 10_000)
        #expect(configuration.scaling == ScalingConfiguration())
        #expect(configuration.scaling.redis == RedisSettings())
        #expect("\(configuration.logLevel)" == "info")
        #expect(configuration.restartFile == "/var/tmp/swift-reverb.restart")
        #expect(configuration.metrics == MetricsConfiguration())
        #expect(try load().restartFile == "/tmp/swift-reverb.restart")
    }

    @Test func debugFlagBeatsTheLogLevelVariable() throws {
        let configuration = try load(environment: ["REVERB_LOG_LEVEL": "error"], flags: .init(debug: true))
        #expect("\(configuration.logLevel)" == "debug")
    }

    @Test func forcedEmptyAndNull() throws {
        let file = #"{"servers": {"reverb": {"path": "ws", "hostname": "file.test"}}}"#
        let configuration = try load(
            environment: ["REVERB_SERVER_PATH": "(empty)", "REVERB_HOST": "null"],
            file: file
        )
        #expect(configuration.server.path == "")
        #expect(configuration.server.hostname == nil)
        // Null for a key that is not nullable means its default.
        let port = try load(
            environment: ["REVERB_SERVER_PORT": "(null)"], file: #"{"servers": {"reverb": {"port": 9}}}"#)
        #expect(port.server.port == 8080)
    }

    @Test func quotedEnvironmentValuesLoseTheirQuotes() throws {
        let configuration = try load(environment: [
            "REVERB_SERVER_HOST": "'127.0.0.1'", "REVERB_SCALING_CHANNEL": "\"c\"",
        ])
        #expect(configuration.server.host == "127.0.0.1")
        #expect(configuration.scaling.channel == "c")
    }

    @Test func tlsSettings() throws {
        let file = #"""
            {"servers": {"reverb": {"options": {"tls": {"local_cert": "file.pem", "local_pk": "file.key",
              "passphrase": "p", "cafile": "ca.pem", "verify_peer": true}}}}}
            """#
        let fromFile = try #require(try load(file: file).server.tls)
        #expect(
            fromFile
                == TLSFiles(
                    certificatePath: "file.pem", privateKeyPath: "file.key", passphrase: "p", caFile: "ca.pem",
                    verifyPeer: true))
        let environment = ["REVERB_TLS_CERT": "env.pem", "REVERB_TLS_KEY": "env.key", "REVERB_TLS_PASSPHRASE": "q"]
        let fromEnvironment = try #require(try load(environment: environment, file: file).server.tls)
        #expect(
            fromEnvironment
                == TLSFiles(
                    certificatePath: "env.pem", privateKeyPath: "env.key", passphrase: "q", caFile: "ca.pem",
                    verifyPeer: true))
        // The certificate file alone may hold the key.
        let certificateOnly = try load(environment: ["REVERB_TLS_CERT": "both.pem"]).server.tls
        #expect(certificateOnly == TLSFiles(certificatePath: "both.pem"))
        #expect(try load().server.tls == nil)
    }

    @Test func laravelRedisTLSKeysAreAccepted() throws {
        let file = nestedJSON(
            redis, #"{"context": {"stream": {"cafile": "ca.pem", "verify_peer": false, "peer_name": "r.test"}}}"#)
        let configuration = try load(file: file)
        #expect(configuration.scaling.redis.tlsCA == "ca.pem")
        #expect(configuration.scaling.redis.tlsVerifyPeer == "false")
        #expect(configuration.scaling.redis.tlsPeerName == "r.test")
        #expect(configuration.warnings.isEmpty)
    }

    @Test func redisSettingsAreNotValidatedHere() throws {
        let configuration = try load(environment: ["REDIS_PORT": "not-a-port", "REDIS_URL": "http://x"])
        #expect(configuration.scaling.redis.port == "not-a-port")
        #expect(configuration.scaling.redis.url == "http://x")
    }
}
