/// The keys `config/reverb.json` may hold (`config.md` §3.2, §4), for warnings on unknown keys and
/// errors on misplaced values; leaf values are checked where they are read.
indirect enum ConfigFileSchema: Sendable {
    /// Any JSON value; its reader checks the type.
    case value
    /// An object with these keys; with `ignoring`, other keys are warned about as ignored, not unknown.
    case object([String: ConfigFileSchema], ignoring: String? = nil)
    /// An array whose elements all follow the schema.
    case array(of: ConfigFileSchema)

    /// What a walk over a file found.
    struct Findings {
        var warnings: [String] = []
        var problems: [String] = []
    }

    /// Walks `value`, which sits at `path` (empty for the root), against this schema.
    func check(_ value: JSONValue, path: String, fileName: String, into findings: inout Findings) {
        if value.isNull { return }
        switch self {
        case .value:
            return
        case .object(let keys, let ignoredNote):
            guard let object = value.objectValue else {
                let name = path.isEmpty ? "the top level" : path
                findings.problems.append("\(fileName): \(name) must be an object.")
                return
            }
            for (key, child) in object.entries {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if let schema = keys[key] {
                    schema.check(child, path: childPath, fileName: fileName, into: &findings)
                } else if let ignoredNote {
                    findings.warnings.append("\(fileName): \(childPath) is ignored (\(ignoredNote)).")
                } else {
                    findings.warnings.append("\(fileName): unknown key \(childPath) is ignored.")
                }
            }
        case .array(let element):
            guard let array = value.arrayValue else {
                findings.problems.append("\(fileName): \(path) must be a list.")
                return
            }
            for (index, child) in array.enumerated() {
                element.check(child, path: "\(path)[\(index)]", fileName: fileName, into: &findings)
            }
        }
    }

    private static func leaves(_ names: String...) -> [String: ConfigFileSchema] {
        Dictionary(uniqueKeysWithValues: names.map { ($0, .value) })
    }

    private static let redisTLS: ConfigFileSchema = .object(
        leaves("ca_file", "cert_file", "key_file", "verify_peer", "verify_peer_name", "peer_name")
    )
    private static let laravelRedisTLS: ConfigFileSchema = .object(
        leaves("cafile", "local_cert", "local_pk", "verify_peer", "verify_peer_name", "peer_name")
    )

    private static let server: ConfigFileSchema = .object(
        leaves(
            "host", "port", "path", "hostname", "max_request_size", "pulse_ingest_interval",
            "telescope_ingest_interval", "restart_file", "log_level"
        ).merging([
            "options": .object([
                "tls": .object(
                    leaves("local_cert", "local_pk", "passphrase", "cafile", "verify_peer"),
                    ignoring: "not supported by swift-reverb"
                )
            ]),
            "scaling": .object(
                leaves(
                    "enabled", "channel", "mode", "query_timeout", "queue_size", "exit_on_timeout", "transport",
                    "stream_length", "replay_window"
                ).merging([
                    "server": .object(
                        leaves(
                            "url", "host", "port", "username", "password", "database", "timeout", "scheme",
                            "connect_timeout"
                        ).merging([
                            "tls": redisTLS,
                            "context": .object(["stream": laravelRedisTLS]),
                            "ssl": laravelRedisTLS,
                        ]) { $1 }
                    )
                ]) { $1 }
            ),
            "metrics": .object(leaves("enabled", "token", "port", "host", "prefix")),
            "dashboard": .object(leaves("enabled", "password")),
        ]) { $1 }
    )

    private static let app: ConfigFileSchema = .object(
        leaves(
            "key", "secret", "app_id", "allowed_origins", "ping_interval", "activity_timeout", "max_connections",
            "max_message_size", "accept_client_events_from", "max_presence_members",
            "max_presence_member_size", "subscription_count", "user_authentication_timeout"
        ).merging([
            "webhooks": .array(
                of: .object(
                    leaves("url", "event_types", "headers").merging([
                        "filter": .object(leaves("channel_name_starts_with", "channel_name_ends_with"))
                    ]) { $1 })),
            "options": .object(leaves("host", "port", "scheme", "use_tls", "useTLS")),
            "rate_limiting": .object(leaves("enabled", "max_attempts", "decay_seconds", "terminate_on_limit")),
        ]) { $1 }
    )

    /// The whole file.
    static let file: ConfigFileSchema = .object([
        "default": .value,
        "servers": .object(["reverb": server]),
        "apps": .object(["provider": .value, "apps": .array(of: app)]),
    ])
}
