import ReverbRedis
import Testing

@testable import Reverb

@Suite struct ConfigurationAppsTests {
    private static let twoApps = #"""
        {"apps": {"apps": [
          {"app_id": "1", "key": "k1", "secret": "s1", "ping_interval": 10, "max_connections": 100,
           "allowed_origins": ["a.test", " b.test "], "options": {"host": "api.test", "port": "8443", "useTLS": true}},
          {"app_id": 2, "key": "k2", "secret": "s2", "accept_client_events_from": "all",
           "rate_limiting": {"enabled": "yes", "max_attempts": "5", "decay_seconds": 7, "terminate_on_limit": true}}
        ]}}
        """#

    @Test func embeddedDefaultWhenNothingIsConfigured() throws {
        let configuration = try loadConfiguration()
        #expect(configuration.apps == [.development])
        #expect(configuration.usesEmbeddedDefault)
        #expect(configuration.warnings.contains { $0.contains("development credentials") })
    }

    @Test func embeddedDefaultIgnoresAppVariablesWithoutCredentials() throws {
        let configuration = try loadConfiguration(environment: [
            "REVERB_APP_PING_INTERVAL": "5", "REVERB_HOST": "x.test",
        ])
        #expect(configuration.apps == [.development])
        #expect(configuration.usesEmbeddedDefault)
    }

    @Test func environmentAppAloneReplacesTheEmbeddedDefault() throws {
        let configuration = try loadConfiguration(
            environment: [
                "REVERB_APP_ID": "42", "REVERB_APP_SECRET": "secret", "REVERB_SCHEME": "http", "REVERB_PORT": "8080",
            ],
            dotEnv: "REVERB_APP_KEY=\"key\"\nREVERB_HOST=localhost\nREVERB_APP_ALLOWED_ORIGINS=\"a.test, *.b.test\"\n"
        )
        #expect(!configuration.usesEmbeddedDefault)
        #expect(configuration.warnings.isEmpty)
        #expect(
            configuration.apps == [
                Application(
                    id: "42", key: "key", secret: "secret", allowedOrigins: ["a.test", "*.b.test"],
                    options: .init(host: "localhost", port: 8080, scheme: "http")
                )
            ])
        #expect(configuration.apps[0].options.useTLS == false)
    }

    @Test func everyEnvironmentAppVariable() throws {
        let environment = environmentAppCredentials.merging([
            "REVERB_APP_PING_INTERVAL": "11", "REVERB_APP_ACTIVITY_TIMEOUT": "12", "REVERB_APP_MAX_CONNECTIONS": "13",
            "REVERB_APP_MAX_MESSAGE_SIZE": "0", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "none",
            "REVERB_APP_RATE_LIMITING_ENABLED": "1", "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "14",
            "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": "15", "REVERB_APP_RATE_LIMIT_TERMINATE": "on",
            "REVERB_APP_MAX_PRESENCE_MEMBERS": "100", "REVERB_APP_MAX_PRESENCE_MEMBER_SIZE": "1024",
            "REVERB_APP_SUBSCRIPTION_COUNT": "true", "REVERB_APP_USER_AUTHENTICATION_TIMEOUT": "16",
        ]) { $1 }
        let app = try #require(try loadConfiguration(environment: environment).apps.first)
        #expect(
            app
                == Application(
                    id: "1", key: "k", secret: "s", pingInterval: 11, activityTimeout: 12, maxConnections: 13,
                    maxMessageSize: 0, acceptClientEventsFrom: .none,
                    rateLimiting: .init(enabled: true, maxAttempts: 14, decaySeconds: 15, terminateOnLimit: true),
                    presenceLimits: .init(maxMembers: 100, maxMemberSize: 1024), subscriptionCount: true,
                    userAuthenticationTimeout: 16
                ))
    }

    @Test func multiAppFile() throws {
        let configuration = try loadConfiguration(file: Self.twoApps)
        #expect(!configuration.usesEmbeddedDefault)
        #expect(
            configuration.apps == [
                Application(
                    id: "1", key: "k1", secret: "s1", allowedOrigins: ["a.test", "b.test"], pingInterval: 10,
                    maxConnections: 100, options: .init(host: "api.test", port: 8443, scheme: "https", useTLS: true)
                ),
                Application(
                    id: "2", key: "k2", secret: "s2", acceptClientEventsFrom: .all,
                    rateLimiting: .init(enabled: true, maxAttempts: 5, decaySeconds: 7, terminateOnLimit: true)
                ),
            ])
    }

    @Test func environmentAppOverridesTheFileAppWithItsIdKeyByKey() throws {
        let environment = [
            "REVERB_APP_ID": "2", "REVERB_APP_KEY": "env-key", "REVERB_APP_SECRET": "env-secret",
            "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "9", "REVERB_APP_MAX_CONNECTIONS": "null", "REVERB_HOST": "env.test",
        ]
        let apps = try loadConfiguration(environment: environment, file: Self.twoApps).apps
        #expect(apps.map(\.id) == ["1", "2"])
        // The other file app is untouched.
        #expect(apps[0].key == "k1")
        #expect(apps[0].options.host == "api.test")
        #expect(apps[1].key == "env-key")
        #expect(apps[1].secret == "env-secret")
        #expect(apps[1].rateLimiting == .init(enabled: true, maxAttempts: 9, decaySeconds: 7, terminateOnLimit: true))
        #expect(apps[1].acceptClientEventsFrom == .all)
        #expect(apps[1].options.host == "env.test")
    }

    @Test func nullFromTheEnvironmentBeatsTheFileValue() throws {
        let environment = environmentAppCredentials.merging([
            "REVERB_APP_MAX_CONNECTIONS": "(null)", "REVERB_APP_PING_INTERVAL": "null",
        ]) { $1 }
        let file =
            #"{"apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "max_connections": 5, "ping_interval": 9}]}}"#
        let app = try #require(try loadConfiguration(environment: environment, file: file).apps.first)
        #expect(app.maxConnections == nil)
        #expect(app.pingInterval == 60)
    }

    @Test func environmentAppWithANewIdIsAddedAfterTheFileApps() throws {
        let apps = try loadConfiguration(environment: environmentAppCredentials, file: Self.twoApps).apps
        #expect(apps.map(\.id) == ["1", "2"])
        #expect(apps.map(\.key) == ["k", "k2"])
        let other = try loadConfiguration(
            environment: ["REVERB_APP_ID": "3", "REVERB_APP_KEY": "k3", "REVERB_APP_SECRET": "s3"],
            file: Self.twoApps
        ).apps
        #expect(other.map(\.id) == ["1", "2", "3"])
        #expect(other[0].pingInterval == 10)
    }

    @Test func configFileWithoutAppsAndAnEnvironmentApp() throws {
        let configuration = try loadConfiguration(environment: environmentAppCredentials, file: "{}")
        #expect(configuration.apps.map(\.id) == ["1"])
        #expect(!configuration.usesEmbeddedDefault)
    }

    @Test func shippedDevelopmentConfiguration() throws {
        let root = try #require(#filePath.split(separator: "/Tests/").first)
        let bytes = try ConfigurationLoader.readFile(atPath: root + "/config/reverb.json").get()
        let configuration = try loadConfiguration(file: String(decoding: bytes, as: UTF8.self))
        #expect(configuration.apps == [.development])
        #expect(!configuration.usesEmbeddedDefault)
        #expect(configuration.server == ServerConfiguration())
        #expect(configuration.scaling.enabled == false)
        var expectedRedis = RedisSettings(host: "127.0.0.1", port: "6379", database: "0", timeout: "60")
        // Problems with a value from the file name its key path, not the environment variable.
        expectedRedis.names.host = "config/reverb.json: servers.reverb.scaling.server.host"
        expectedRedis.names.port = "config/reverb.json: servers.reverb.scaling.server.port"
        expectedRedis.names.database = "config/reverb.json: servers.reverb.scaling.server.database"
        expectedRedis.names.timeout = "config/reverb.json: servers.reverb.scaling.server.timeout"
        #expect(configuration.scaling.redis == expectedRedis)
        #expect(
            configuration.warnings == [
                "App 123456 uses the development credentials (key \"reverb-key\", secret \"reverb-secret\"): "
                    + "set your own before serving real clients."
            ])
    }

    @Test func useTLSFollowsTheSchemeUnlessSet() throws {
        let file = #"""
            {"apps": {"apps": [
              {"app_id": "1", "key": "k1", "secret": "s", "options": {"scheme": "http"}},
              {"app_id": "2", "key": "k2", "secret": "s"},
              {"app_id": "3", "key": "k3", "secret": "s", "options": {"scheme": "https", "use_tls": "off"}}
            ]}}
            """#
        let apps = try loadConfiguration(file: file).apps
        #expect(apps.map(\.options.useTLS) == [false, true, false])
    }

    @Test func warnings() throws {
        let file = #"""
            {"servr": 1, "servers": {"reverb": {"prot": 1, "options": {"tls": {"allow_self_signed": true}}}},
             "apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "allowed_origins": [], "typo": 1}]}}
            """#
        let configuration = try loadConfiguration(file: file)
        #expect(
            configuration.warnings == [
                "config/reverb.json: unknown key servr is ignored.",
                "config/reverb.json: unknown key servers.reverb.prot is ignored.",
                "config/reverb.json: servers.reverb.options.tls.allow_self_signed is ignored (not supported by swift-reverb).",
                "config/reverb.json: unknown key apps.apps[0].typo is ignored.",
                "config/reverb.json: apps.apps[0].allowed_origins is empty: every origin is refused.",
            ])
        #expect(configuration.apps[0].allowedOrigins == [])
        let fromEnvironment = try loadConfiguration(
            environment: environmentAppCredentials.merging(["REVERB_APP_ALLOWED_ORIGINS": "(empty)"]) { $1 })
        #expect(fromEnvironment.warnings == ["REVERB_APP_ALLOWED_ORIGINS is empty: every origin is refused."])
    }
}
