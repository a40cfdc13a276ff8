import Testing

@testable import Reverb

/// Every message of config.md §7 that the loader produces, asserted exactly.
@Suite struct ConfigurationValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var environment: [String: String] = [:]
        var dotEnv: String?
        var file: String?
        var flags = ConfigurationFlags()
        var expected: [String]
        var exitCode: Int32 = 78

        var testDescription: String { name }
    }

    private static let app = #"{"app_id": "123456", "key": "reverb-key", "secret": "reverb-secret"}"#
    private static let env = environmentAppCredentials

    static let cases: [Case] = [
        Case(
            name: "no app anywhere",
            file: #"{"apps": {"apps": []}}"#,
            expected: [
                "No application configured: set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET, or add apps to config/reverb.json."
            ]
        ),
        Case(
            name: "environment app incomplete",
            environment: ["REVERB_APP_ID": "1"],
            dotEnv: "REVERB_APP_KEY=k",
            expected: ["REVERB_APP_SECRET is not set, but REVERB_APP_ID and REVERB_APP_KEY are."]
        ),
        Case(
            name: "environment app with one credential",
            environment: ["REVERB_APP_KEY": "k"],
            expected: ["REVERB_APP_ID and REVERB_APP_SECRET are not set, but REVERB_APP_KEY is."]
        ),
        Case(
            name: "file app without a credential",
            file: #"{"apps": {"apps": [\#(app), {"app_id": "2", "secret": "x"}]}}"#,
            expected: ["config/reverb.json: apps.apps[1].key is missing."]
        ),
        Case(
            name: "empty credential",
            file: #"{"apps": {"apps": [{"app_id": "2", "key": "", "secret": "x"}]}}"#,
            expected: ["config/reverb.json: apps.apps[0].key: must not be empty."]
        ),
        Case(
            name: "app id with a slash",
            file: #"{"apps": {"apps": [{"app_id": "a/b", "key": "k", "secret": "x"}]}}"#,
            expected: [#"config/reverb.json: apps.apps[0].app_id: "a/b" must be one path segment (no "/")."#]
        ),
        Case(
            name: "duplicate key",
            file:
                #"{"apps": {"apps": [\#(app), {"app_id": "2", "key": "k2", "secret": "x"}, {"app_id": "3", "key": "reverb-key", "secret": "y"}]}}"#,
            expected: [#"config/reverb.json: apps.apps[2].key "reverb-key" is already used by app 123456."#]
        ),
        Case(
            name: "duplicate id",
            file: #"{"apps": {"apps": [\#(app), {"app_id": 123456, "key": "k2", "secret": "x"}]}}"#,
            expected: [#"config/reverb.json: apps.apps[1].app_id "123456" is already used by app 123456."#]
        ),
        Case(
            name: "environment app reusing a file app's key",
            environment: ["REVERB_APP_ID": "9", "REVERB_APP_KEY": "reverb-key", "REVERB_APP_SECRET": "s"],
            file: #"{"apps": {"apps": [\#(app)]}}"#,
            expected: [#"REVERB_APP_KEY "reverb-key" is already used by app 123456."#]
        ),
        Case(
            name: "bad port in the environment",
            environment: env.merging(["REVERB_SERVER_PORT": "80a"]) { $1 },
            expected: [#"REVERB_SERVER_PORT: "80a" is not a port number (0-65535)."#]
        ),
        Case(
            name: "bad port flag",
            environment: env,
            flags: ConfigurationFlags(port: "99999"),
            expected: [#"--port: "99999" is not a port number (0-65535)."#],
            exitCode: 64
        ),
        Case(
            name: "bad port in .env",
            dotEnv: "A=1\n\nREVERB_SERVER_PORT=-1\n",
            expected: [#".env:3: REVERB_SERVER_PORT: "-1" is not a port number (0-65535)."#]
        ),
        Case(
            name: "bad port in the file",
            file: #"{"servers": {"reverb": {"port": 70000}}, "apps": {"apps": [\#(app)]}}"#,
            expected: [#"config/reverb.json: servers.reverb.port: "70000" is not a port number (0-65535)."#]
        ),
        Case(
            name: "bad integer",
            environment: env.merging(["REVERB_APP_PING_INTERVAL": "abc", "REVERB_APP_MAX_MESSAGE_SIZE": "-1"]) { $1 },
            expected: [
                #"REVERB_APP_PING_INTERVAL: "abc" is not an integer >= 1."#,
                #"REVERB_APP_MAX_MESSAGE_SIZE: "-1" is not an integer >= 0."#,
            ]
        ),
        Case(
            name: "bad integers in the file",
            file:
                #"{"servers": {"reverb": {"max_request_size": 0}}, "apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "rate_limiting": {"max_attempts": "1e3"}, "max_connections": 0}]}}"#,
            expected: [
                #"config/reverb.json: servers.reverb.max_request_size: "0" is not an integer >= 1."#,
                #"config/reverb.json: apps.apps[0].max_connections: "0" is not an integer >= 1."#,
                #"config/reverb.json: apps.apps[0].rate_limiting.max_attempts: "1e3" is not an integer >= 1."#,
            ]
        ),
        Case(
            name: "bad boolean",
            environment: env.merging(["REVERB_SCALING_ENABLED": "maybe"]) { $1 },
            expected: [#"REVERB_SCALING_ENABLED: "maybe" is not a boolean (true/false, 1/0, yes/no, on/off)."#]
        ),
        Case(
            name: "bad choice",
            environment: env.merging(["REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "everyone", "REVERB_SCHEME": "ftp"]) {
                $1
            },
            expected: [
                #"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM: "everyone" must be all, members or none."#,
                #"REVERB_SCHEME: "ftp" must be http or https."#,
            ]
        ),
        Case(
            name: "bad log level",
            environment: env.merging(["REVERB_LOG_LEVEL": "loud"]) { $1 },
            expected: [#"REVERB_LOG_LEVEL: "loud" must be trace, debug, info, notice, warning, error or critical."#]
        ),
        Case(
            name: "bad path",
            environment: env.merging(["REVERB_SERVER_PATH": "/ws?x"]) { $1 },
            expected: [#"REVERB_SERVER_PATH: "/ws?x" may contain only letters, digits, "-", "_", ".", "~" and "/"."#]
        ),
        Case(
            name: "bad seconds and queue size",
            environment: env.merging(["REVERB_SCALING_QUERY_TIMEOUT": "2s", "REVERB_SCALING_QUEUE_SIZE": "0"]) { $1 },
            expected: [
                #"REVERB_SCALING_QUERY_TIMEOUT: "2s" is not a number of seconds > 0."#,
                #"REVERB_SCALING_QUEUE_SIZE: "0" is not an integer >= 1."#,
            ]
        ),
        Case(
            name: "bad transport settings",
            environment: env.merging([
                "REVERB_SCALING_TRANSPORT": "kafka", "REVERB_SCALING_STREAM_LENGTH": "10",
                "REVERB_SCALING_REPLAY_WINDOW": "soon",
            ]) { $1 },
            expected: [
                #"REVERB_SCALING_TRANSPORT: "kafka" must be pubsub or streams."#,
                #"REVERB_SCALING_STREAM_LENGTH: "10" is not an integer >= 1000."#,
                #"REVERB_SCALING_REPLAY_WINDOW: "soon" is not a number of seconds > 0."#,
            ]
        ),
        Case(
            name: "bad routing settings",
            environment: env.merging(["REVERB_SCALING_ROUTING": "smart", "REVERB_SCALING_BUCKETS": "1000"]) { $1 },
            expected: [
                #"REVERB_SCALING_ROUTING: "smart" must be broadcast or interest."#,
                #"REVERB_SCALING_BUCKETS: "1000" is not a power of two between 1 and 65536."#,
            ]
        ),
        Case(
            name: "buckets beyond 65536, in the file",
            environment: env,
            file: nestedJSON(["servers", "reverb", "scaling"], #"{"buckets": 131072}"#),
            expected: [
                #"config/reverb.json: servers.reverb.scaling.buckets: "131072" is not a power of two between 1 and 65536."#
            ]
        ),
        Case(
            name: "interest routing over streams",
            environment: env.merging(["REVERB_SCALING_ROUTING": "interest", "REVERB_SCALING_TRANSPORT": "streams"]) {
                $1
            },
            expected: [
                #"REVERB_SCALING_ROUTING: "interest" needs the pubsub transport (REVERB_SCALING_TRANSPORT is streams); use "broadcast" with streams."#
            ]
        ),
        Case(
            name: "empty scaling channel",
            environment: env.merging(["REVERB_SCALING_CHANNEL": "(empty)"]) { $1 },
            expected: ["REVERB_SCALING_CHANNEL: must not be empty."]
        ),
        Case(
            name: "only the key",
            environment: env.merging(["REVERB_TLS_KEY": "key.pem"]) { $1 },
            expected: ["REVERB_TLS_KEY is set but REVERB_TLS_CERT is not."]
        ),
        Case(
            name: "only the key in the file",
            file:
                #"{"servers": {"reverb": {"options": {"tls": {"local_pk": "key.pem"}}}}, "apps": {"apps": [\#(app)]}}"#,
            expected: ["config/reverb.json: servers.reverb.options.tls: local_pk is set but local_cert is not."]
        ),
        Case(
            name: "unsupported server",
            environment: env.merging(["REVERB_SERVER": "pusher"]) { $1 },
            expected: [#"REVERB_SERVER: only "reverb" is supported."#]
        ),
        Case(
            name: "unsupported provider",
            file: #"{"apps": {"provider": "database", "apps": [\#(app)]}}"#,
            expected: [#"config/reverb.json: apps.provider: only "config" is supported."#]
        ),
        Case(
            name: "unsupported scaling mode",
            environment: env.merging(["REVERB_SCALING_MODE": "reverb"]) { $1 },
            expected: [#"REVERB_SCALING_MODE: "reverb" (Reverb-compatible scaling) is not available in this build."#]
        ),
        Case(
            name: "unknown scaling mode",
            environment: env.merging(["REVERB_SCALING_MODE": "fast"]) { $1 },
            expected: [#"REVERB_SCALING_MODE: "fast" must be native or reverb."#]
        ),
        Case(
            name: "malformed JSON",
            file: "{\n  \"apps\": {\n    \"apps\": []\n    \"x\": 1\n  }\n}",
            expected: [#"config/reverb.json:4:5: expected "," or "}"."#]
        ),
        Case(
            name: "file not an object",
            file: "[1]",
            expected: ["config/reverb.json: the top level must be an object."]
        ),
        Case(
            // Fuzz/FuzzConfigFile/regressions/null-config-file: loaded with no apps and no problem.
            name: "file that is only null",
            file: " null",
            expected: ["config/reverb.json: the top level must be an object, not null."]
        ),
        Case(
            name: "misplaced section",
            file: #"{"servers": {"reverb": {"scaling": true}}, "apps": {"apps": {}}}"#,
            expected: [
                "config/reverb.json: servers.reverb.scaling must be an object.",
                "config/reverb.json: apps.apps must be a list.",
            ]
        ),
        Case(
            name: ".env syntax",
            dotEnv: "A=1\nB=2\n\n\n\n\nREVERB_APP_ID=1 2\n",
            expected: [".env:7: unexpected whitespace in value."]
        ),
        Case(
            name: "dashboard settings",
            environment: env.merging(["REVERB_DASHBOARD_ENABLED": "maybe", "REVERB_DASHBOARD_PASSWORD": "short"]) {
                $1
            },
            expected: [
                #"REVERB_DASHBOARD_ENABLED: "maybe" is not a boolean (true/false, 1/0, yes/no, on/off)."#,
                "REVERB_DASHBOARD_PASSWORD: must be at least 8 characters long.",
            ]
        ),
        Case(
            name: "dashboard password in the file",
            file: #"{"servers": {"reverb": {"dashboard": {"password": "1234567"}}}, "apps": {"apps": [\#(app)]}}"#,
            expected: ["config/reverb.json: servers.reverb.dashboard.password: must be at least 8 characters long."]
        ),
        Case(
            name: "metrics port negative",
            environment: env.merging(["REVERB_METRICS_PORT": "-1"]) { $1 },
            expected: [#"REVERB_METRICS_PORT: "-1" is not a port number (1-65535)."#]
        ),
        Case(
            name: "metrics settings in the file",
            file: #"""
                {"servers": {"reverb": {"metrics": {"enabled": "sometimes", "port": 0, "host": "", "prefix": "9x"}}},
                 "apps": {"apps": [\#(app)]}}
                """#,
            expected: [
                #"config/reverb.json: servers.reverb.metrics.enabled: "sometimes" is not a boolean (true/false, 1/0, yes/no, on/off)."#,
                #"config/reverb.json: servers.reverb.metrics.port: "0" is not a port number (1-65535)."#,
                "config/reverb.json: servers.reverb.metrics.host: must not be empty.",
                #"config/reverb.json: servers.reverb.metrics.prefix: "9x" may contain only letters, digits, "_" and ":", and must not start with a digit."#,
            ]
        ),
        Case(
            name: "webhook URL without a scheme",
            environment: env.merging(["REVERB_APP_WEBHOOK_URL": "hooks.example.com"]) { $1 },
            expected: [#"REVERB_APP_WEBHOOK_URL: "hooks.example.com" is not an http or https URL."#]
        ),
        Case(
            name: "unknown webhook event type",
            environment: env.merging([
                "REVERB_APP_WEBHOOK_URL": "https://hooks.test/x", "REVERB_APP_WEBHOOK_EVENTS": "channel_ocupied",
            ]) { $1 },
            expected: [
                #"REVERB_APP_WEBHOOK_EVENTS: "channel_ocupied" is not a webhook event type (channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count)."#
            ]
        ),
        Case(
            name: "webhook events without the URL",
            environment: env.merging(["REVERB_APP_WEBHOOK_EVENTS": "cache_miss"]) { $1 },
            expected: ["REVERB_APP_WEBHOOK_EVENTS: is set, but REVERB_APP_WEBHOOK_URL is not."]
        ),
        Case(
            name: "webhooks in the file",
            file: #"""
                {"apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "webhooks": [
                  {"url": "hooks.example.com"},
                  {"event_types": ["cache_miss"]},
                  {"url": "https://h.test", "event_types": ["nope"]},
                  {"url": "https://h.test", "headers": {"X-A": 1}},
                  {"url": "https://h.test", "filter": "presence-"},
                  "https://h.test"
                ]}]}}
                """#,
            expected: [
                "config/reverb.json: apps.apps[0].webhooks[4].filter must be an object.",
                "config/reverb.json: apps.apps[0].webhooks[5] must be an object.",
                #"config/reverb.json: apps.apps[0].webhooks[0].url: "hooks.example.com" is not an http or https URL."#,
                "config/reverb.json: apps.apps[0].webhooks[1].url is missing.",
                #"config/reverb.json: apps.apps[0].webhooks[2].event_types: "nope" is not a webhook event type (channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count)."#,
                "config/reverb.json: apps.apps[0].webhooks[3].headers: header X-A: expected a string, found 1.",
            ]
        ),
        Case(
            name: "every problem at once, one in a flag",
            environment: ["REVERB_APP_ID": "1", "REVERB_SERVER_PORT": "x", "REVERB_SCALING_ENABLED": "maybe"],
            flags: ConfigurationFlags(path: "a b"),
            expected: [
                #"REVERB_SERVER_PORT: "x" is not a port number (0-65535)."#,
                #"--path: "a b" may contain only letters, digits, "-", "_", ".", "~" and "/"."#,
                #"REVERB_SCALING_ENABLED: "maybe" is not a boolean (true/false, 1/0, yes/no, on/off)."#,
                "REVERB_APP_KEY and REVERB_APP_SECRET are not set, but REVERB_APP_ID is.",
            ],
            exitCode: 64
        ),
    ]

    @Test(arguments: cases)
    func message(_ testCase: Case) {
        do {
            let configuration = try loadConfiguration(
                environment: testCase.environment,
                dotEnv: testCase.dotEnv,
                file: testCase.file,
                flags: testCase.flags
            )
            Issue.record("loaded without problems: \(configuration.apps.map(\.id))")
        } catch {
            #expect(error.messages == testCase.expected)
            #expect(error.exitCode == testCase.exitCode)
            #expect(error.description == testCase.expected.joined(separator: "\n"))
        }
    }

    @Test func unreadableTLSFiles() {
        let unreadable: @Sendable (String) -> String? = { $0 == "ok.pem" ? nil : "No such file or directory" }
        let problems = configurationProblems(
            environment: Self.env.merging(["REVERB_TLS_CERT": "cert.pem", "REVERB_TLS_KEY": "ok.pem"]) { $1 },
            file: #"{"servers": {"reverb": {"options": {"tls": {"cafile": "ca.pem"}}}}}"#,
            readError: unreadable
        )
        #expect(
            problems == [
                #"REVERB_TLS_CERT: cannot read "cert.pem": No such file or directory."#,
                #"config/reverb.json: servers.reverb.options.tls.cafile: cannot read "ca.pem": No such file or directory."#,
            ])
    }

    @Test func valuesOutsideTheRulesAreAccepted() {
        let environment = Self.env.merging([
            "REVERB_SERVER_PORT": "+0", "REVERB_APP_MAX_MESSAGE_SIZE": "0", "REVERB_SCALING_QUERY_TIMEOUT": "0.25",
            "REVERB_SCALING_ENABLED": "(FALSE)", "REVERB_SERVER_PATH": "a-b_c.d~e/f",
        ]) { $1 }
        #expect(configurationProblems(environment: environment) == [])
    }
}
