/// The command-line flags that feed the configuration; they beat every other source (`config.md` §1).
public struct ConfigurationFlags: Sendable, Hashable {
    /// `--host`: bind address.
    public var host: String?
    /// `--port`: listening port, 0 for any free port.
    public var port: String?
    /// `--path`: route prefix.
    public var path: String?
    /// `--hostname`: public name.
    public var hostname: String?
    /// `--config`: the config file, which must exist.
    public var configFile: String?
    /// `--debug`: log level `debug`.
    public var debug: Bool

    public init(
        host: String? = nil,
        port: String? = nil,
        path: String? = nil,
        hostname: String? = nil,
        configFile: String? = nil,
        debug: Bool = false
    ) {
        self.host = host
        self.port = port
        self.path = path
        self.hostname = hostname
        self.configFile = configFile
        self.debug = debug
    }
}
