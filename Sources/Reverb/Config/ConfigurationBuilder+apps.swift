/// App assembly (`config.md` §3.3): the file's apps, the environment app, the embedded default.
extension ConfigurationBuilder {
    private static let credentialVariables = ["REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"]

    /// One assembled app with the settings its id and key came from, for duplicate messages.
    private struct AssembledApp {
        var application: Application
        var idSetting: ResolvedSetting
        var keySetting: ResolvedSetting
    }

    mutating func assembleApps(
        _ sources: ConfigurationSources,
        configFileInUse: Bool,
        into configuration: inout ReverbConfiguration
    ) {
        let appsSection = sources.root.section("apps")
        if let provider = appsSection.value("provider"), let name = text(provider), name != "config" {
            report(provider, "only \"config\" is supported.")
        }
        let fileApps: [FileSection] = (appsSection.object?["apps"]?.arrayValue ?? []).enumerated().compactMap {
            index, element in
            guard let object = element.objectValue else { return nil }
            return FileSection(object: object, path: "apps.apps[\(index)]", fileName: sources.fileName)
        }

        let credentials = Self.credentialVariables.map { sources.variable($0) }
        let present = credentials.map { $0 != nil && $0?.value.isNull == false }
        let environmentAppDefined = present.contains(true)
        let environmentAppComplete = !present.contains(false)
        if environmentAppDefined && !environmentAppComplete {
            problems.append(ConfigurationError.Problem(Self.incompleteEnvironmentAppMessage(present: present)))
        }

        var overriddenIndex: Int?
        if environmentAppComplete, let id = credentials[0].flatMap({ Self.plainText($0.value) }) {
            overriddenIndex = fileApps.firstIndex { $0.value("app_id").flatMap { Self.plainText($0.value) } == id }
        }
        var assembled: [AssembledApp] = []
        for (index, section) in fileApps.enumerated() {
            let app = assembleApp(sources, file: section, useEnvironment: index == overriddenIndex)
            if let app { assembled.append(app) }
        }
        if environmentAppComplete && overriddenIndex == nil,
            let app = assembleApp(sources, file: nil, useEnvironment: true)
        {
            assembled.append(app)
        }
        if !environmentAppComplete {
            for name in ["REVERB_APP_WEBHOOK_URL", "REVERB_APP_WEBHOOK_EVENTS"] {
                if let setting = sources.variable(name), optionalText(setting) != nil {
                    report(
                        setting,
                        "is set, but there is no environment app (REVERB_APP_ID, REVERB_APP_KEY, REVERB_APP_SECRET).")
                }
            }
        }
        reportDuplicates(assembled)

        if !configFileInUse && !environmentAppDefined {
            configuration.apps = [.development]
            configuration.usesEmbeddedDefault = true
        } else {
            configuration.apps = assembled.map(\.application)
            // An app that is listed but invalid has its own problems; "none configured" would mislead.
            let listed = appsSection.object?["apps"]
            let nothingListed = listed == nil || listed == .null || listed?.arrayValue?.isEmpty == true
            if configuration.apps.isEmpty && nothingListed && !environmentAppDefined && !sourcesIncomplete {
                problems.append(
                    ConfigurationError.Problem(
                        "No application configured: set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET, "
                            + "or add apps to \(sources.fileName)."
                    )
                )
            }
        }
        for app in configuration.apps where app.usesDevelopmentCredentials {
            warnings.append(
                "App \(app.id) uses the development credentials (key \"reverb-key\", secret \"reverb-secret\"): "
                    + "set your own before serving real clients."
            )
        }
    }

    /// `REVERB_APP_SECRET is not set, but REVERB_APP_ID and REVERB_APP_KEY are.`
    private static func incompleteEnvironmentAppMessage(present: [Bool]) -> String {
        let missing = zip(credentialVariables, present).filter { !$0.1 }.map(\.0)
        let set = zip(credentialVariables, present).filter { $0.1 }.map(\.0)
        let missingPart =
            missing.count == 1 ? "\(missing[0]) is not set" : "\(missing.joined(separator: " and ")) are not set"
        let setPart = set.count == 1 ? "\(set[0]) is" : "\(set.joined(separator: " and ")) are"
        return "\(missingPart), but \(setPart)."
    }

    /// The text of a string or number, without reporting anything.
    private static func plainText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text), .number(let text): text
        default: nil
        }
    }

    /// Builds one app. With `useEnvironment`, each `REVERB_APP_*` (and `REVERB_HOST`/`PORT`/`SCHEME`)
    /// variable beats the file's key; with no file, it is the environment app alone.
    private mutating func assembleApp(
        _ sources: ConfigurationSources,
        file: FileSection?,
        useEnvironment: Bool
    ) -> AssembledApp? {
        func setting(_ variable: String?, _ keys: String...) -> ResolvedSetting? {
            (useEnvironment ? sources.variable(variable) : nil) ?? file?.value(keys)
        }
        var credentials: [(setting: ResolvedSetting, value: String)] = []
        for (variable, key) in zip(Self.credentialVariables, ["app_id", "key", "secret"]) {
            guard let credential = setting(variable, key) else {
                if let file {
                    problems.append(ConfigurationError.Problem("\(file.fileName): \(file.keyPath([key])) is missing."))
                }
                continue
            }
            if let value = nonEmptyText(credential) { credentials.append((credential, value)) }
        }
        guard credentials.count == 3 else { return nil }
        let (idSetting, id) = credentials[0]
        if id.contains("/") {
            report(idSetting, "\(Self.quoted(idSetting.value)) must be one path segment (no \"/\").")
            return nil
        }

        var app = Application(id: id, key: credentials[1].value, secret: credentials[2].value)
        let originsSetting = setting("REVERB_APP_ALLOWED_ORIGINS", "allowed_origins")
        if let originsSetting, let origins = list(originsSetting) {
            app.allowedOrigins = origins
            if origins.isEmpty {
                warnings.append("\(originsSetting.source.label) is empty: every origin is refused.")
            }
        }
        if let value = integer(setting("REVERB_APP_PING_INTERVAL", "ping_interval"), minimum: 1) {
            app.pingInterval = value
        }
        if let value = integer(setting("REVERB_APP_ACTIVITY_TIMEOUT", "activity_timeout"), minimum: 1) {
            app.activityTimeout = value
        }
        app.maxConnections = integer(setting("REVERB_APP_MAX_CONNECTIONS", "max_connections"), minimum: 1)
        if let value = integer(setting("REVERB_APP_MAX_MESSAGE_SIZE", "max_message_size"), minimum: 0) {
            app.maxMessageSize = value
        }
        if let value = choice(
            setting("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "accept_client_events_from"),
            Application.ClientEventPolicy.allCases.map(\.rawValue)
        ), let policy = Application.ClientEventPolicy(rawValue: value) {
            app.acceptClientEventsFrom = policy
        }

        var limits = Application.RateLimiting()
        limits.enabled = boolean(setting("REVERB_APP_RATE_LIMITING_ENABLED", "rate_limiting", "enabled")) ?? false
        if let value = integer(
            setting("REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS", "rate_limiting", "max_attempts"), minimum: 1)
        {
            limits.maxAttempts = value
        }
        if let value = integer(
            setting("REVERB_APP_RATE_LIMIT_DECAY_SECONDS", "rate_limiting", "decay_seconds"), minimum: 1)
        {
            limits.decaySeconds = value
        }
        limits.terminateOnLimit =
            boolean(setting("REVERB_APP_RATE_LIMIT_TERMINATE", "rate_limiting", "terminate_on_limit")) ?? false
        app.rateLimiting = limits

        var presence = Application.PresenceLimits()
        if let value = integer(setting("REVERB_APP_MAX_PRESENCE_MEMBERS", "max_presence_members"), minimum: 0) {
            presence.maxMembers = value
        }
        if let value = integer(
            setting("REVERB_APP_MAX_PRESENCE_MEMBER_SIZE", "max_presence_member_size"), minimum: 0)
        {
            presence.maxMemberSize = value
        }
        app.presenceLimits = presence
        app.subscriptionCount =
            boolean(setting("REVERB_APP_SUBSCRIPTION_COUNT", "subscription_count")) ?? false
        if let value = integer(
            setting("REVERB_APP_USER_AUTHENTICATION_TIMEOUT", "user_authentication_timeout"), minimum: 0)
        {
            app.userAuthenticationTimeout = value
        }

        let scheme = choice(setting("REVERB_SCHEME", "options", "scheme"), ["http", "https"]) ?? "https"
        app.options = Application.Options(
            host: optionalText(setting("REVERB_HOST", "options", "host")),
            port: port(setting("REVERB_PORT", "options", "port")) ?? 443,
            scheme: scheme,
            useTLS: boolean(setting(nil, "options", "use_tls") ?? setting(nil, "options", "useTLS"))
        )

        app.webhooks = webhooks(sources, file: file, useEnvironment: useEnvironment)
        return AssembledApp(application: app, idSetting: idSetting, keySetting: credentials[1].setting)
    }

    /// `config/reverb.json: apps.apps[2].key "reverb-key" is already used by app 123456.`
    private mutating func reportDuplicates(_ apps: [AssembledApp]) {
        var ids: [String: String] = [:]
        var keys: [String: String] = [:]
        for app in apps {
            claim(app.application.id, from: app.idSetting, for: app.application.id, in: &ids)
            claim(app.application.key, from: app.keySetting, for: app.application.id, in: &keys)
        }
    }

    /// Records `value` as app `owner`'s, or a problem when an earlier app has it.
    private mutating func claim(
        _ value: String, from setting: ResolvedSetting, for owner: String, in owners: inout [String: String]
    ) {
        if let previous = owners[value] {
            problems.append(
                ConfigurationError.Problem("\(setting.source.label) \"\(value)\" is already used by app \(previous)."))
        } else {
            owners[value] = owner
        }
    }
}
