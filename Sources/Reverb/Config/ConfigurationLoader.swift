import Logging

/// Command-line flags that override every other configuration source.
public struct ConfigurationFlags: Sendable {
    public var host: String?
    public var port: String?
    public var path: String?
    public var hostname: String?
    public var configFile: String?
    public var debug: Bool

    public init(
        host: String? = nil, port: String? = nil, path: String? = nil, hostname: String? = nil,
        configFile: String? = nil, debug: Bool = false
    ) {
        self.host = host
        self.port = port
        self.path = path
        self.hostname = hostname
        self.configFile = configFile
        self.debug = debug
    }
}

/// Every problem found while loading the configuration, one line each naming its source.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var problems: [String]
    /// 64 when a flag is at fault, else 78.
    public var exitCode: Int32

    public init(problems: [String], exitCode: Int32 = 78) {
        self.problems = problems
        self.exitCode = exitCode
    }

    public var description: String { problems.joined(separator: "\n") }
}

/// Builds the node's configuration from flags and the environment.
public enum ConfigurationLoader {
    public static func load(
        flags: ConfigurationFlags, environment: [String: String], workingDirectory: String
    ) throws(ConfigurationError) -> ReverbConfiguration {
        var problems: [String] = []
        var flagProblem = false
        func value(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return v
        }
        func integer(_ name: String, minimum: Int, source: String? = nil, raw: String? = nil) -> Int? {
            guard let text = raw ?? value(name) else { return nil }
            guard let number = Int(text), number >= minimum else {
                problems.append("\(source ?? name): \"\(text)\" is not an integer >= \(minimum).")
                return nil
            }
            return number
        }
        var server = ServerConfiguration()
        if let host = flags.host ?? value("REVERB_SERVER_HOST") { server.host = host }
        if let portText = flags.port ?? value("REVERB_SERVER_PORT") {
            if let port = Int(portText), (0...65535).contains(port) {
                server.port = port
            } else {
                let source = flags.port != nil ? "--port" : "REVERB_SERVER_PORT"
                if flags.port != nil { flagProblem = true }
                problems.append("\(source): \"\(portText)\" is not a port number (0-65535).")
            }
        }
        if let path = flags.path ?? value("REVERB_SERVER_PATH") { server.path = ServerConfiguration.normalizedPath(path) }
        server.hostname = flags.hostname ?? value("REVERB_HOST")
        if let size = integer("REVERB_MAX_REQUEST_SIZE", minimum: 1) { server.maxRequestSize = size }

        var configuration = ReverbConfiguration(server: server)
        configuration.logLevel = flags.debug ? .debug : .info
        let id = value("REVERB_APP_ID")
        let key = value("REVERB_APP_KEY")
        let secret = value("REVERB_APP_SECRET")
        if id == nil && key == nil && secret == nil {
            configuration.apps = [.development]
            configuration.usesEmbeddedDefault = true
        } else if let id, let key, let secret {
            var app = Application(id: id, key: key, secret: secret)
            if let origins = value("REVERB_APP_ALLOWED_ORIGINS") {
                app.allowedOrigins = origins.split(separator: ",").map { String($0.trimmingSpaces()) }.filter {
                    !$0.isEmpty
                }
            }
            if let v = integer("REVERB_APP_PING_INTERVAL", minimum: 1) { app.pingInterval = v }
            if let v = integer("REVERB_APP_ACTIVITY_TIMEOUT", minimum: 1) { app.activityTimeout = v }
            if let v = integer("REVERB_APP_MAX_CONNECTIONS", minimum: 1) { app.maxConnections = v }
            if let v = integer("REVERB_APP_MAX_MESSAGE_SIZE", minimum: 0) { app.maxMessageSize = v }
            if let v = value("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM") {
                if let policy = Application.ClientEventPolicy(rawValue: v) {
                    app.acceptClientEventsFrom = policy
                } else {
                    problems.append("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM: \"\(v)\" must be all, members or none.")
                }
            }
            if let v = value("REVERB_APP_RATE_LIMITING_ENABLED") { app.rateLimiting.enabled = v == "true" || v == "1" }
            if let v = integer("REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS", minimum: 1) { app.rateLimiting.maxAttempts = v }
            if let v = integer("REVERB_APP_RATE_LIMIT_DECAY_SECONDS", minimum: 1) { app.rateLimiting.decaySeconds = v }
            if let v = value("REVERB_APP_RATE_LIMIT_TERMINATE") { app.rateLimiting.terminateOnLimit = v == "true" || v == "1" }
            configuration.apps = [app]
        } else {
            problems.append("REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET must all be set.")
        }
        guard problems.isEmpty else { throw ConfigurationError(problems: problems, exitCode: flagProblem ? 64 : 78) }
        return configuration
    }
}
