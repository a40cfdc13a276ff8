import Logging
import ReverbRedis

/// Turns the parsed sources into a `ReverbConfiguration`, key by key, collecting every problem
/// (`config.md` §1, §4, §7). Pure: files arrive as text in `ConfigurationInput`.
struct ConfigurationBuilder {
    var problems: [ConfigurationError.Problem] = []
    var warnings: [String] = []
    /// True when `.env` or the config file could not be parsed, so "no app" would only mislead.
    var sourcesIncomplete = false

    static func build(_ input: ConfigurationInput) throws(ConfigurationError) -> ReverbConfiguration {
        var builder = ConfigurationBuilder()
        builder.problems = input.problems
        if case .unavailable = input.configFile { builder.sourcesIncomplete = true }
        let sources = builder.parseSources(input)
        var configuration = ReverbConfiguration()
        builder.assembleServer(
            sources, flags: input.flags, environment: input.environment, readError: input.readError,
            into: &configuration)
        builder.assembleApps(sources, configFileInUse: !input.configFile.isNone, into: &configuration)
        guard builder.problems.isEmpty else {
            throw ConfigurationError(problems: builder.problems, warnings: builder.warnings)
        }
        configuration.warnings = builder.warnings
        return configuration
    }

    private mutating func parseSources(_ input: ConfigurationInput) -> ConfigurationSources {
        var flags: [String: String] = [:]
        flags["--host"] = input.flags.host
        flags["--port"] = input.flags.port
        flags["--path"] = input.flags.path
        flags["--hostname"] = input.flags.hostname

        var dotEnv: [String: DotEnvParser.Entry] = [:]
        let dotEnvFileName = input.dotEnv?.fileName ?? ".env"
        if let (fileName, contents) = input.dotEnv {
            do {
                for entry in try DotEnvParser.parse(contents, environment: input.environment) {
                    dotEnv[entry.name] = entry.value == nil ? nil : entry
                }
            } catch {
                problems.append(ConfigurationError.Problem(error.message(fileName: fileName)))
                sourcesIncomplete = true
            }
        }

        var file: JSONObject?
        var fileName = ConfigurationLoader.defaultConfigFile
        if case .contents(let name, let text) = input.configFile {
            fileName = name
            do {
                let root = try JSONParser.parse(text)
                var findings = ConfigFileSchema.Findings()
                // `null` below the top means "not set"; a file that is only `null` is a mistake
                // (found by FuzzConfigFile: it loaded with no apps and no problem).
                if root.isNull { findings.problems.append("\(name): the top level must be an object, not null.") }
                ConfigFileSchema.file.check(root, path: "", fileName: name, into: &findings)
                warnings += findings.warnings
                problems += findings.problems.map { ConfigurationError.Problem($0) }
                file = root.objectValue
                if file == nil { sourcesIncomplete = true }
            } catch {
                problems.append(ConfigurationError.Problem("\(name):\(error.line):\(error.column): \(error.reason)."))
                sourcesIncomplete = true
            }
        }
        return ConfigurationSources(
            flags: flags,
            environment: input.environment,
            dotEnv: dotEnv,
            dotEnvFileName: dotEnvFileName,
            file: file,
            fileName: fileName
        )
    }

    // MARK: - Server, scaling and the rest of §4.1 and §4.2

    private mutating func assembleServer(
        _ sources: ConfigurationSources,
        flags: ConfigurationFlags,
        environment: [String: String],
        readError: (String) -> String?,
        into configuration: inout ReverbConfiguration
    ) {
        let root = sources.root
        let server = root.section("servers").section("reverb")

        let defaultSetting = sources.resolve(variable: "REVERB_SERVER", file: root.value("default"))
        if let defaultSetting, let name = text(defaultSetting), name != "reverb" {
            report(defaultSetting, "only \"reverb\" is supported.")
        }

        var settings = ServerConfiguration()
        if let host = nonEmptyText(
            sources.resolve(flag: "--host", variable: "REVERB_SERVER_HOST", file: server.value("host")))
        {
            settings.host = host
        }
        if let port = port(sources.resolve(flag: "--port", variable: "REVERB_SERVER_PORT", file: server.value("port")))
        {
            settings.port = port
        }
        let pathSetting = sources.resolve(flag: "--path", variable: "REVERB_SERVER_PATH", file: server.value("path"))
        if let pathSetting, let path = text(pathSetting) {
            if path.unicodeScalars.allSatisfy(Self.isPathScalar) {
                settings.path = ServerConfiguration.normalizedPath(path)
            } else {
                report(
                    pathSetting,
                    "\(Self.quoted(pathSetting.value)) may contain only letters, digits, \"-\", \"_\", \".\", \"~\" and \"/\"."
                )
            }
        }
        settings.hostname = optionalText(
            sources.resolve(flag: "--hostname", variable: "REVERB_HOST", file: server.value("hostname"))
        )
        if let size = integer(
            sources.resolve(variable: "REVERB_MAX_REQUEST_SIZE", file: server.value("max_request_size")), minimum: 1)
        {
            settings.maxRequestSize = size
        }
        if let interval = integer(
            sources.resolve(variable: "REVERB_PULSE_INGEST_INTERVAL", file: server.value("pulse_ingest_interval")),
            minimum: 0
        ) {
            settings.pulseIngestInterval = interval
        }
        if let interval = integer(
            sources.resolve(
                variable: "REVERB_TELESCOPE_INGEST_INTERVAL", file: server.value("telescope_ingest_interval")),
            minimum: 0
        ) {
            settings.telescopeIngestInterval = interval
        }
        settings.tls = tlsFiles(sources, section: server.section("options").section("tls"), readError: readError)
        if settings.tls == nil, let hostname = settings.hostname {
            settings.tls = discoveredCertificate(hostname: hostname, home: environment["HOME"], readError: readError)
        }
        configuration.server = settings

        configuration.scaling = scaling(sources, section: server.section("scaling"))

        if flags.debug {
            configuration.logLevel = .debug
        } else if let level = choice(
            sources.resolve(variable: "REVERB_LOG_LEVEL", file: server.value("log_level")),
            Logger.Level.allCases.map(\.rawValue)
        ), let parsed = Logger.Level(rawValue: level) {
            configuration.logLevel = parsed
        }

        configuration.restartFile =
            optionalText(sources.resolve(variable: "REVERB_RESTART_FILE", file: server.value("restart_file")))
            ?? ReverbConfiguration.defaultRestartFile(temporaryDirectory: environment["TMPDIR"])

        configuration.metrics = metrics(sources, section: server.section("metrics"))
        configuration.dashboard = dashboard(sources, section: server.section("dashboard"))
    }

    /// `servers.reverb.dashboard.*` (docs.md "Dashboard"): checked even while disabled.
    private mutating func dashboard(_ sources: ConfigurationSources, section: FileSection) -> DashboardConfiguration {
        var dashboard = DashboardConfiguration()
        dashboard.enabled =
            boolean(sources.resolve(variable: "REVERB_DASHBOARD_ENABLED", file: section.value("enabled"))) ?? false
        let passwordSetting = sources.resolve(variable: "REVERB_DASHBOARD_PASSWORD", file: section.value("password"))
        if let passwordSetting, let password = optionalText(passwordSetting) {
            if password.count >= DashboardConfiguration.minimumPasswordLength {
                dashboard.password = password
            } else {
                report(
                    passwordSetting,
                    "must be at least \(DashboardConfiguration.minimumPasswordLength) characters long.")
            }
        }
        return dashboard
    }

    /// `servers.reverb.metrics.*` (`http-api.md` §8.2): every value is checked, even while disabled.
    private mutating func metrics(_ sources: ConfigurationSources, section: FileSection) -> MetricsConfiguration {
        var metrics = MetricsConfiguration()
        metrics.enabled =
            boolean(sources.resolve(variable: "REVERB_METRICS_ENABLED", file: section.value("enabled"))) ?? false
        metrics.token = optionalText(sources.resolve(variable: "REVERB_METRICS_TOKEN", file: section.value("token")))
        metrics.port = number(
            sources.resolve(variable: "REVERB_METRICS_PORT", file: section.value("port")), "a port number (1-65535)"
        ) { ValueSyntax.integer($0).flatMap { (1...65535).contains($0) ? $0 : nil } }
        if let host = nonEmptyText(sources.resolve(variable: "REVERB_METRICS_HOST", file: section.value("host"))) {
            metrics.host = host
        }
        let prefixSetting = sources.resolve(variable: "REVERB_METRICS_PREFIX", file: section.value("prefix"))
        if let prefixSetting {
            let prefix = text(prefixSetting) ?? ""
            if MetricsConfiguration.isValidPrefix(prefix) {
                metrics.prefix = prefix
            } else {
                report(
                    prefixSetting,
                    "\(Self.quoted(prefixSetting.value)) may contain only letters, digits, \"_\" and \":\", "
                        + "and must not start with a digit.")
            }
        }
        return metrics
    }

    private static func isPathScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", "~", "/": true
        default: false
        }
    }

    /// Reverb's certificate discovery for Laravel Herd and Valet (`config.md` §4.1): with no TLS
    /// configured and a `hostname`, `<hostname>.crt` and `<hostname>.key` from their certificate folders.
    private mutating func discoveredCertificate(
        hostname: String, home: String?, readError: (String) -> String?
    ) -> TLSFiles? {
        guard let home, !home.isEmpty, !hostname.contains("/") else { return nil }
        for folder in [
            "\(home)/Library/Application Support/Herd/config/valet/Certificates", "\(home)/.config/valet/Certificates",
        ] {
            let certificate = "\(folder)/\(hostname).crt"
            let key = "\(folder)/\(hostname).key"
            if readError(certificate) == nil && readError(key) == nil {
                warnings.append("Serving TLS with the certificate found for \(hostname) in \(folder).")
                return TLSFiles(certificatePath: certificate, privateKeyPath: key)
            }
        }
        return nil
    }

    private mutating func tlsFiles(
        _ sources: ConfigurationSources,
        section: FileSection,
        readError: (String) -> String?
    ) -> TLSFiles? {
        let certificateSetting = sources.resolve(variable: "REVERB_TLS_CERT", file: section.value("local_cert"))
        let keySetting = sources.resolve(variable: "REVERB_TLS_KEY", file: section.value("local_pk"))
        let caSetting = section.value("cafile")
        let certificate = optionalText(certificateSetting)
        let key = optionalText(keySetting)
        let caFile = optionalText(caSetting)
        let passphrase = optionalText(
            sources.resolve(variable: "REVERB_TLS_PASSPHRASE", file: section.value("passphrase")))
        let verifyPeer = boolean(section.value("verify_peer")) ?? false

        for case (let setting?, let path?) in [
            (certificateSetting, certificate), (keySetting, key), (caSetting, caFile),
        ] {
            if let reason = readError(path) {
                report(setting, "cannot read \"\(path)\": \(reason).")
            }
        }
        if let keySetting, key != nil, certificate == nil {
            let message =
                keySetting.source.isConfigFile
                ? "\(sources.fileName): \(section.path): local_pk is set but local_cert is not."
                : "\(keySetting.source.label) is set but REVERB_TLS_CERT is not."
            problems.append(ConfigurationError.Problem(message))
        }
        guard let certificate else { return nil }
        return TLSFiles(
            certificatePath: certificate,
            privateKeyPath: key,
            passphrase: passphrase,
            caFile: caFile,
            verifyPeer: verifyPeer
        )
    }

    private mutating func scaling(_ sources: ConfigurationSources, section: FileSection) -> ScalingConfiguration {
        var scaling = ScalingConfiguration()
        scaling.enabled =
            boolean(sources.resolve(variable: "REVERB_SCALING_ENABLED", file: section.value("enabled"))) ?? false
        if let channel = nonEmptyText(
            sources.resolve(variable: "REVERB_SCALING_CHANNEL", file: section.value("channel")))
        {
            scaling.channel = channel
        }
        let modeSetting = sources.resolve(variable: "REVERB_SCALING_MODE", file: section.value("mode"))
        if let modeSetting, let mode = choice(modeSetting, ScalingConfiguration.Mode.allCases.map(\.rawValue)) {
            if mode == ScalingConfiguration.Mode.reverb.rawValue {
                report(
                    modeSetting,
                    "\(Self.quoted(modeSetting.value)) (Reverb-compatible scaling) is not available in this build.")
            }
        }
        if let timeout = seconds(
            sources.resolve(variable: "REVERB_SCALING_QUERY_TIMEOUT", file: section.value("query_timeout")))
        {
            scaling.queryTimeout = timeout
        }
        if let size = integer(
            sources.resolve(variable: "REVERB_SCALING_QUEUE_SIZE", file: section.value("queue_size")), minimum: 1)
        {
            scaling.queueSize = size
        }
        scaling.exitOnTimeout =
            boolean(sources.resolve(variable: "REVERB_SCALING_EXIT_ON_TIMEOUT", file: section.value("exit_on_timeout")))
            ?? false
        if let transport = choice(
            sources.resolve(variable: "REVERB_SCALING_TRANSPORT", file: section.value("transport")),
            ScalingConfiguration.Transport.allCases.map(\.rawValue))
        {
            scaling.transport = ScalingConfiguration.Transport(rawValue: transport) ?? .pubsub
        }
        if let length = integer(
            sources.resolve(variable: "REVERB_SCALING_STREAM_LENGTH", file: section.value("stream_length")),
            minimum: 1_000)
        {
            scaling.streamLength = length
        }
        if let window = seconds(
            sources.resolve(variable: "REVERB_SCALING_REPLAY_WINDOW", file: section.value("replay_window")))
        {
            scaling.replayWindow = window
        }
        let routingSetting = sources.resolve(variable: "REVERB_SCALING_ROUTING", file: section.value("routing"))
        if let routing = choice(routingSetting, ScalingConfiguration.Routing.allCases.map(\.rawValue)) {
            scaling.routing = ScalingConfiguration.Routing(rawValue: routing) ?? .broadcast
        }
        let bucketSetting = sources.resolve(variable: "REVERB_SCALING_BUCKETS", file: section.value("buckets"))
        if let bucketSetting, let buckets = integer(bucketSetting, minimum: 1) {
            if buckets > 65_536 || buckets & (buckets - 1) != 0 {
                report(bucketSetting, "\(Self.quoted(bucketSetting.value)) is not a power of two between 1 and 65536.")
            } else {
                scaling.buckets = buckets
            }
        }
        if scaling.routing == .interest && scaling.transport == .streams, let routingSetting {
            report(
                routingSetting,
                "\"interest\" needs the pubsub transport (REVERB_SCALING_TRANSPORT is streams); use \"broadcast\" with streams."
            )
        }
        scaling.redis = redisSettings(sources, section: section.section("server"))
        return scaling
    }

    /// `REDIS_*` and `scaling.server.*` as raw text; `RedisClientFactory` validates them when scaling is on.
    private mutating func redisSettings(_ sources: ConfigurationSources, section: FileSection) -> RedisSettings {
        let laravelTLS = [section.section("context").section("stream"), section.section("ssl")]
        func raw(_ variable: String?, _ key: String, laravelKey: String? = nil) -> ResolvedSetting? {
            let fileSetting =
                key.hasPrefix("tls.")
                ? section.section("tls").value(String(key.dropFirst(4)))
                    ?? laravelTLS.lazy.compactMap { $0.value(laravelKey ?? "") }.first
                : section.value(key)
            return sources.resolve(variable: variable, file: fileSetting)
        }
        var url = raw("REDIS_URL", "url")
        var host = raw("REDIS_HOST", "host")
        var port = raw("REDIS_PORT", "port")
        let username = raw("REDIS_USERNAME", "username")
        let password = raw("REDIS_PASSWORD", "password")
        let database = raw("REDIS_DB", "database")
        let timeout = raw("REDIS_TIMEOUT", "timeout")
        let scheme = raw("REDIS_SCHEME", "scheme")
        let connectTimeout = raw("REDIS_CONNECT_TIMEOUT", "connect_timeout")
        let tlsCA = raw("REDIS_TLS_CA", "tls.ca_file", laravelKey: "cafile")
        let tlsCert = raw("REDIS_TLS_CERT", "tls.cert_file", laravelKey: "local_cert")
        let tlsKey = raw("REDIS_TLS_KEY", "tls.key_file", laravelKey: "local_pk")
        let tlsVerifyPeer = raw("REDIS_TLS_VERIFY_PEER", "tls.verify_peer", laravelKey: "verify_peer")
        var cluster = sources.resolve(variable: "REDIS_CLUSTER", file: section.value("cluster"))
        let sentinel = section.section("sentinel")
        var sentinels = sources.resolve(variable: "REDIS_SENTINELS", file: sentinel.value("sentinels"))
        let sentinelMaster = sources.resolve(variable: "REDIS_SENTINEL_MASTER", file: sentinel.value("master"))
        let sentinelPassword = sources.resolve(variable: "REDIS_SENTINEL_PASSWORD", file: sentinel.value("password"))
        // One server, a cluster or sentinels: the environment (or `.env`) beats the file here as
        // everywhere, so `REDIS_CLUSTER` overrides a Laravel-style file's `host: 127.0.0.1` and
        // `REDIS_HOST` a file's `cluster`. Two of them at the same level stay an error (the parser's).
        func fromEnvironment(_ settings: [ResolvedSetting?]) -> Bool {
            settings.contains { $0.map { !$0.source.isConfigFile } ?? false }
        }
        func outranked(_ setting: ResolvedSetting?, by winner: Bool) -> ResolvedSetting? {
            guard winner, let setting, setting.source.isConfigFile else { return setting }
            return nil
        }
        let topologyFromEnvironment = fromEnvironment([cluster, sentinels])
        let serverFromEnvironment = fromEnvironment([url, host, port])
        url = outranked(url, by: topologyFromEnvironment && !serverFromEnvironment)
        host = outranked(host, by: topologyFromEnvironment && !serverFromEnvironment)
        port = outranked(port, by: topologyFromEnvironment && !serverFromEnvironment)
        cluster = outranked(cluster, by: serverFromEnvironment && !topologyFromEnvironment)
        sentinels = outranked(sentinels, by: serverFromEnvironment && !topologyFromEnvironment)
        // Messages about a setting name where its value came from: the variable or the file key.
        func name(_ setting: ResolvedSetting?, _ variable: String) -> String {
            guard let setting, setting.source.isConfigFile else { return variable }
            return setting.source.label
        }
        var names = RedisSettings.Names(
            url: name(url, "REDIS_URL"), host: name(host, "REDIS_HOST"), port: name(port, "REDIS_PORT"),
            username: name(username, "REDIS_USERNAME"), password: name(password, "REDIS_PASSWORD"),
            database: name(database, "REDIS_DB"), timeout: name(timeout, "REDIS_TIMEOUT"),
            scheme: name(scheme, "REDIS_SCHEME"), connectTimeout: name(connectTimeout, "REDIS_CONNECT_TIMEOUT"),
            tlsCA: name(tlsCA, "REDIS_TLS_CA"), tlsCert: name(tlsCert, "REDIS_TLS_CERT"),
            tlsKey: name(tlsKey, "REDIS_TLS_KEY"), tlsVerifyPeer: name(tlsVerifyPeer, "REDIS_TLS_VERIFY_PEER"))
        names.cluster = name(cluster, "REDIS_CLUSTER")
        names.sentinels = name(sentinels, "REDIS_SENTINELS")
        names.sentinelMaster = name(sentinelMaster, "REDIS_SENTINEL_MASTER")
        names.sentinelPassword = name(sentinelPassword, "REDIS_SENTINEL_PASSWORD")
        return RedisSettings(
            url: text(url), host: text(host), port: text(port), username: text(username), password: text(password),
            database: text(database), timeout: text(timeout), scheme: text(scheme),
            connectTimeout: text(connectTimeout), tlsCA: text(tlsCA), tlsCert: text(tlsCert), tlsKey: text(tlsKey),
            tlsVerifyPeer: text(tlsVerifyPeer),
            tlsVerifyPeerName: text(raw(nil, "tls.verify_peer_name", laravelKey: "verify_peer_name")),
            tlsPeerName: text(raw(nil, "tls.peer_name", laravelKey: "peer_name")),
            cluster: addressList(cluster), sentinels: addressList(sentinels), sentinelMaster: text(sentinelMaster),
            sentinelPassword: text(sentinelPassword),
            names: names)
    }
}

extension ConfigurationInput.ConfigFile {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
