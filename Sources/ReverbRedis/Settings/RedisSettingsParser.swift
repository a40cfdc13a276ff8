/// Turns `RedisSettings` into a validated endpoint, following spec `scaling.md` §6.3:
/// defaults, then URL parts, then URL query keys, each later source winning.
struct RedisSettingsParser {
    /// A value with the name of the setting it came from, for messages.
    private struct Sourced {
        var value: String
        var source: String
    }

    private enum Transport: Equatable {
        case tcp, tls, unix
    }

    private static let schemes: [String: Transport] = [
        "tcp": .tcp, "redis": .tcp, "tls": .tls, "rediss": .tls, "unix": .unix,
    ]
    private static let schemeChoices = "(use redis, rediss, tcp, tls or unix)"

    struct Result {
        var configuration: RedisConnectionConfiguration
        var topology: RedisTopology
        var timeout: Duration
        var warnings: [String]
    }

    private let settings: RedisSettings
    private var names: RedisSettings.Names { settings.names }
    private var problems: [String] = []
    private var warnings: [String] = []

    init(_ settings: RedisSettings) {
        self.settings = settings
    }

    static func parse(_ settings: RedisSettings) throws(RedisSettingsError) -> Result {
        var parser = RedisSettingsParser(settings)
        let result = parser.run()
        guard let result, parser.problems.isEmpty else {
            throw RedisSettingsError(problems: parser.problems)
        }
        return result
    }

    private mutating func run() -> Result? {
        var host = sourced(settings.host, names.host)
        var port = sourced(settings.port, names.port)
        var username = sourced(settings.username, names.username)
        var password = sourced(settings.password, names.password)
        var database = sourced(settings.database, names.database)
        var timeout = sourced(settings.timeout, names.timeout)
        var connectTimeout = sourced(settings.connectTimeout, names.connectTimeout)
        var transport = Transport.tcp
        var socketPath: Sourced?

        if let scheme = sourced(settings.scheme, names.scheme) {
            guard let chosen = Self.schemes[scheme.value.lowercased()] else {
                problems.append("\(scheme.source): unsupported scheme \"\(scheme.value)\" \(Self.schemeChoices)")
                return nil
            }
            transport = chosen
        }

        if let text = nonEmpty(settings.url) {
            let source = names.url
            guard let url = RedisURL(text) else {
                problems.append(
                    "\(source): not a valid Redis URL (expected redis://[user:password@]host[:port][/database])"
                )
                return nil
            }
            if let scheme = url.scheme {
                guard let chosen = Self.schemes[scheme] else {
                    problems.append("\(source): unsupported scheme \"\(scheme)\" \(Self.schemeChoices)")
                    return nil
                }
                transport = chosen
            }
            if let user = nonEmpty(url.user) { username = Sourced(value: user, source: source) }
            if let secret = nonEmpty(url.password) { password = Sourced(value: secret, source: source) }
            if transport == .unix && url.scheme == "unix" {
                guard let path = nonEmpty(url.path) else {
                    problems.append("\(source): the unix socket path is missing (unix:///path/to/redis.sock)")
                    return nil
                }
                socketPath = Sourced(value: path, source: source)
            } else {
                if let value = url.host { host = Sourced(value: value, source: source) }
                if let value = url.port { port = Sourced(value: value, source: source) }
                if let value = nonEmpty(String(url.path.dropFirst())) {
                    database = Sourced(value: value, source: source)
                }
            }
            var queryDatabase: Sourced?
            var queryDB: Sourced?
            for (key, value) in url.query {
                let item = nonEmpty(value).map { Sourced(value: $0, source: source) }
                switch key {
                case "database": queryDatabase = item ?? queryDatabase
                case "db": queryDB = item ?? queryDB
                case "username": username = item ?? username
                case "password": password = item ?? password
                case "timeout": timeout = item ?? timeout
                case "connect_timeout": connectTimeout = item ?? connectTimeout
                default: warnings.append("\(source): unknown query key \"\(key)\" ignored")
                }
            }
            if let value = queryDatabase ?? queryDB { database = value }
        }

        if socketPath == nil {
            if let value = host, value.value.hasPrefix("/") {
                transport = .unix
                socketPath = value
            } else if transport == .unix {
                if let value = host {
                    socketPath = value
                } else {
                    problems.append("\(names.scheme): scheme \"unix\" needs a socket path in \(names.host)")
                }
            }
        }

        let endpoint: RedisConnectionConfiguration.Endpoint
        if transport == .unix {
            endpoint = .unixSocket(path: socketPath?.value ?? "")
        } else {
            var hostName = host?.value ?? "127.0.0.1"
            if hostName.hasPrefix("["), hostName.hasSuffix("]") { hostName = String(hostName.dropFirst().dropLast()) }
            if hostName.isEmpty, let host {
                problems.append("\(host.source): host \"\(host.value)\" names no address")
            }
            endpoint = .tcp(host: hostName, port: parsePort(port) ?? 6379)
        }
        let databaseNumber = parseDatabase(database) ?? 0
        let timeoutValue = parseSeconds(timeout, label: "timeout") ?? .seconds(60)
        let connectTimeoutValue = parseSeconds(connectTimeout, label: "connect_timeout") ?? .seconds(5)
        let tls = parseTLS(enabled: transport == .tls)

        var user = username?.value
        if let username, password == nil {
            warnings.append("\(username.source): a username without a password is ignored (no AUTH)")
            user = nil
        }
        let configuration = RedisConnectionConfiguration(
            endpoint: endpoint,
            username: user,
            password: password?.value,
            database: databaseNumber,
            connectTimeout: connectTimeoutValue,
            tls: tls
        )
        let topology = parseTopology(transport: transport, database: database, databaseNumber: databaseNumber)
        return Result(
            configuration: configuration, topology: topology ?? .server, timeout: timeoutValue, warnings: warnings)
    }

    /// `REDIS_CLUSTER`, `REDIS_SENTINELS` or one server: exactly one of them.
    private mutating func parseTopology(transport: Transport, database: Sourced?, databaseNumber: Int) -> RedisTopology?
    {
        let cluster = sourced(settings.cluster, names.cluster)
        let sentinels = sourced(settings.sentinels, names.sentinels)
        let single = [
            sourced(settings.url, names.url), sourced(settings.host, names.host), sourced(settings.port, names.port),
        ].compactMap { $0 }
        let chosen = [cluster, sentinels].compactMap { $0 } + single.prefix(1)
        if chosen.count > 1 {
            let listed = chosen.map(\.source)
            problems.append(
                "\(listed.dropLast().joined(separator: ", ")) and \(listed.last!) are exclusive: set a Redis Cluster's "
                    + "seeds, a Sentinel deployment's sentinels or one server, not more than one")
            return nil
        }
        if sentinels == nil {
            for setting in [
                sourced(settings.sentinelMaster, names.sentinelMaster),
                sourced(settings.sentinelPassword, names.sentinelPassword),
            ].compactMap({ $0 }) {
                warnings.append("\(setting.source) is ignored without \(names.sentinels)")
            }
        }
        if let cluster {
            if transport == .unix {
                problems.append("\(cluster.source): a Redis Cluster is reached over TCP, not a unix socket")
            }
            if databaseNumber != 0, let database {
                problems.append("\(database.source): a Redis Cluster has database 0 only, not \(databaseNumber)")
            }
            return addresses(cluster, defaultPort: 6379).map { .cluster(seeds: $0) }
        }
        if let sentinels {
            if transport == .unix {
                problems.append("\(sentinels.source): sentinels are reached over TCP, not a unix socket")
            }
            let master = sourced(settings.sentinelMaster, names.sentinelMaster)?.value ?? "mymaster"
            let password = sourced(settings.sentinelPassword, names.sentinelPassword)?.value
            return addresses(sentinels, defaultPort: 26379).map {
                .sentinel(RedisSentinelConfiguration(sentinels: $0, masterName: master, password: password))
            }
        }
        return .server
    }

    /// `host:port,host:port,...` (IPv6 in brackets; a missing port is `defaultPort`).
    private mutating func addresses(_ list: Sourced, defaultPort: Int) -> [RedisConnectionConfiguration.Endpoint]? {
        var endpoints: [RedisConnectionConfiguration.Endpoint] = []
        var failed = false
        for item in list.value.split(separator: ",", omittingEmptySubsequences: false) {
            let text = String(
                item.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
            var host = Substring(text)
            var port: Substring?
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else {
                    problems.append("\(list.source): \"\(text)\" has no closing bracket (write [::1]:7000)")
                    failed = true
                    continue
                }
                host = text[text.index(after: text.startIndex)..<close]
                let rest = text[text.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":") else {
                        problems.append("\(list.source): \"\(text)\" is not host:port")
                        failed = true
                        continue
                    }
                    port = rest.dropFirst()
                }
            } else if let colon = text.lastIndex(of: ":") {
                host = text[..<colon]
                port = text[text.index(after: colon)...]
            }
            guard !host.isEmpty else {
                problems.append(
                    "\(list.source): \(text.isEmpty ? "an empty address" : "\"\(text)\" names no host") in \"\(list.value)\""
                )
                failed = true
                continue
            }
            var number = defaultPort
            if let port {
                guard let value = Self.integer(String(port)) else {
                    problems.append("\(list.source): port \"\(port)\" of \"\(text)\" is not a number (1-65535)")
                    failed = true
                    continue
                }
                guard (1...65535).contains(value) else {
                    problems.append("\(list.source): port \(value) of \"\(text)\" is out of range (1-65535)")
                    failed = true
                    continue
                }
                number = value
            }
            endpoints.append(.tcp(host: String(host), port: number))
        }
        return failed ? nil : endpoints
    }

    private mutating func parsePort(_ port: Sourced?) -> Int? {
        guard let port else { return nil }
        guard let number = Self.integer(port.value) else {
            problems.append("\(port.source): port \"\(port.value)\" is not a number (1-65535)")
            return nil
        }
        guard (1...65535).contains(number) else {
            problems.append("\(port.source): port \(number) is out of range (1-65535)")
            return nil
        }
        return number
    }

    private mutating func parseDatabase(_ database: Sourced?) -> Int? {
        guard let database else { return nil }
        guard let number = Self.integer(database.value) else {
            problems.append("\(database.source): database \"\(database.value)\" is not a non-negative integer")
            return nil
        }
        return number
    }

    private mutating func parseSeconds(_ value: Sourced?, label: String) -> Duration? {
        guard let value else { return nil }
        let text = value.value
        let digits = text.filter(\.isNumber).count
        let dots = text.filter { $0 == "." }.count
        guard digits > 0, dots <= 1, digits + dots == text.count, text.allSatisfy(\.isASCII),
            let seconds = Double(text), seconds > 0
        else {
            problems.append("\(value.source): \(label) \"\(text)\" is not a positive number of seconds")
            return nil
        }
        // Duration.seconds(Double) traps beyond Int128 attoseconds (found by fuzzing): a year is plenty.
        guard seconds <= 31_536_000 else {
            problems.append("\(value.source): \(label) \"\(text)\" is more than a year (31536000 seconds)")
            return nil
        }
        return .seconds(seconds)
    }

    private mutating func parseTLS(enabled: Bool) -> RedisConnectionConfiguration.TLS? {
        let ca = sourced(settings.tlsCA, names.tlsCA)
        let cert = sourced(settings.tlsCert, names.tlsCert)
        let key = sourced(settings.tlsKey, names.tlsKey)
        let verify = sourced(settings.tlsVerifyPeer, names.tlsVerifyPeer)
        let verifyName = sourced(settings.tlsVerifyPeerName, names.tlsVerifyPeer + "_name")
        let peerName = nonEmpty(settings.tlsPeerName)
        guard enabled else {
            for setting in [ca, cert, key, verify, verifyName].compactMap({ $0 }) {
                problems.append(
                    "\(setting.source): TLS settings need a TLS connection (rediss://, tls:// or scheme tls)"
                )
            }
            return nil
        }
        if cert != nil, key == nil { problems.append("\(names.tlsCert) is set but \(names.tlsKey) is not") }
        if key != nil, cert == nil { problems.append("\(names.tlsKey) is set but \(names.tlsCert) is not") }
        return RedisConnectionConfiguration.TLS(
            caFile: ca?.value,
            certificateFile: cert?.value,
            keyFile: key?.value,
            verifyPeer: parseBoolean(verify, default: true),
            serverName: peerName,
            verifyHostname: parseBoolean(verifyName, default: true)
        )
    }

    private mutating func parseBoolean(_ value: Sourced?, default defaultValue: Bool) -> Bool {
        guard let value else { return defaultValue }
        if let boolean = Self.boolean(value.value) { return boolean }
        problems.append("\(value.source): \"\(value.value)\" is not a boolean (true/false, 1/0, yes/no, on/off)")
        return defaultValue
    }

    private func sourced(_ value: String?, _ source: String) -> Sourced? {
        nonEmpty(value).map { Sourced(value: $0, source: source) }
    }

    private func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    /// `config.md` §5 integer: optional `+`, then decimal digits only.
    static func integer(_ text: String) -> Int? {
        let digits = text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { return nil }
        return Int(digits) ?? Int.max
    }

    /// `config.md` §5 boolean, any case.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "1", "yes", "on", "(true)": true
        case "false", "0", "no", "off", "(false)": false
        default: nil
        }
    }
}
