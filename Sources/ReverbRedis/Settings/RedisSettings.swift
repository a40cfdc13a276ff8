/// Laravel-style Redis settings as given by the environment, `.env` or the config file: raw strings,
/// `nil` (or empty) when unset. `RedisClientFactory` parses and validates them.
public struct RedisSettings: Sendable, Equatable {
    /// How each setting is named in error messages and warnings.
    public struct Names: Sendable, Equatable {
        public var url: String
        public var host: String
        public var port: String
        public var username: String
        public var password: String
        public var database: String
        public var timeout: String
        public var scheme: String
        public var connectTimeout: String
        public var tlsCA: String
        public var tlsCert: String
        public var tlsKey: String
        public var tlsVerifyPeer: String
        public var cluster: String = "REDIS_CLUSTER"
        public var sentinels: String = "REDIS_SENTINELS"
        public var sentinelMaster: String = "REDIS_SENTINEL_MASTER"
        public var sentinelPassword: String = "REDIS_SENTINEL_PASSWORD"

        /// The environment variable names: `REDIS_URL`, `REDIS_HOST`, ... `REDIS_TLS_VERIFY_PEER`.
        public static let environment = Names(
            url: "REDIS_URL",
            host: "REDIS_HOST",
            port: "REDIS_PORT",
            username: "REDIS_USERNAME",
            password: "REDIS_PASSWORD",
            database: "REDIS_DB",
            timeout: "REDIS_TIMEOUT",
            scheme: "REDIS_SCHEME",
            connectTimeout: "REDIS_CONNECT_TIMEOUT",
            tlsCA: "REDIS_TLS_CA",
            tlsCert: "REDIS_TLS_CERT",
            tlsKey: "REDIS_TLS_KEY",
            tlsVerifyPeer: "REDIS_TLS_VERIFY_PEER"
        )

        /// Config-file key paths, e.g. `config/reverb.json: servers.reverb.scaling.server.url`.
        public static func configFile(_ file: String = "config/reverb.json") -> Names {
            let prefix = "\(file): servers.reverb.scaling.server."
            var names = Names(
                url: prefix + "url",
                host: prefix + "host",
                port: prefix + "port",
                username: prefix + "username",
                password: prefix + "password",
                database: prefix + "database",
                timeout: prefix + "timeout",
                scheme: prefix + "scheme",
                connectTimeout: prefix + "connect_timeout",
                tlsCA: prefix + "tls.ca_file",
                tlsCert: prefix + "tls.cert_file",
                tlsKey: prefix + "tls.key_file",
                tlsVerifyPeer: prefix + "tls.verify_peer"
            )
            names.cluster = prefix + "cluster"
            names.sentinels = prefix + "sentinel.sentinels"
            names.sentinelMaster = prefix + "sentinel.master"
            names.sentinelPassword = prefix + "sentinel.password"
            return names
        }

        /// Names for each setting, in the order of `RedisSettings`' fields.
        public init(
            url: String,
            host: String,
            port: String,
            username: String,
            password: String,
            database: String,
            timeout: String,
            scheme: String,
            connectTimeout: String,
            tlsCA: String,
            tlsCert: String,
            tlsKey: String,
            tlsVerifyPeer: String
        ) {
            self.url = url
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.timeout = timeout
            self.scheme = scheme
            self.connectTimeout = connectTimeout
            self.tlsCA = tlsCA
            self.tlsCert = tlsCert
            self.tlsKey = tlsKey
            self.tlsVerifyPeer = tlsVerifyPeer
        }
    }

    /// `REDIS_URL`: `redis://`, `rediss://`, `tcp://`, `tls://`, `unix://` or `//host`; its parts beat the keys below.
    public var url: String?
    /// `REDIS_HOST`, default `127.0.0.1`; a leading `/` means a unix socket path.
    public var host: String?
    /// `REDIS_PORT`, default 6379.
    public var port: String?
    /// `REDIS_USERNAME`, default none.
    public var username: String?
    /// `REDIS_PASSWORD`, default none.
    public var password: String?
    /// `REDIS_DB`, default 0.
    public var database: String?
    /// `REDIS_TIMEOUT`: seconds without Redis before the link counts as degraded, default 60.
    public var timeout: String?
    /// `REDIS_SCHEME`: `tcp` (default), `redis`, `tls`, `rediss` or `unix`.
    public var scheme: String?
    /// `REDIS_CONNECT_TIMEOUT`: seconds, default 5.
    public var connectTimeout: String?
    /// `REDIS_TLS_CA`: PEM CA file, default the system trust store.
    public var tlsCA: String?
    /// `REDIS_TLS_CERT`: PEM client certificate, default none.
    public var tlsCert: String?
    /// `REDIS_TLS_KEY`: PEM client key, default none.
    public var tlsKey: String?
    /// `REDIS_TLS_VERIFY_PEER`: boolean, default `true`.
    public var tlsVerifyPeer: String?
    /// `tls.verify_peer_name`: check the server's name in its certificate. Default true.
    public var tlsVerifyPeerName: String?
    /// `tls.peer_name`: the name verified and sent as SNI. Default: the host.
    public var tlsPeerName: String?
    /// `REDIS_CLUSTER`: `host:port,host:port,...`, seed nodes of a Redis Cluster. Default none.
    public var cluster: String?
    /// `REDIS_SENTINELS`: `host:port,host:port,...`, the sentinels of a monitored primary. Default none.
    public var sentinels: String?
    /// `REDIS_SENTINEL_MASTER`: the primary's name at the sentinels. Default `mymaster`.
    public var sentinelMaster: String?
    /// `REDIS_SENTINEL_PASSWORD`: `AUTH` to the sentinels. Default none.
    public var sentinelPassword: String?
    /// Names used in messages; default the environment variable names.
    public var names: Names

    /// Settings as given; `nil` or empty means unset.
    public init(
        url: String? = nil,
        host: String? = nil,
        port: String? = nil,
        username: String? = nil,
        password: String? = nil,
        database: String? = nil,
        timeout: String? = nil,
        scheme: String? = nil,
        connectTimeout: String? = nil,
        tlsCA: String? = nil,
        tlsCert: String? = nil,
        tlsKey: String? = nil,
        tlsVerifyPeer: String? = nil,
        tlsVerifyPeerName: String? = nil,
        tlsPeerName: String? = nil,
        cluster: String? = nil,
        sentinels: String? = nil,
        sentinelMaster: String? = nil,
        sentinelPassword: String? = nil,
        names: Names = .environment
    ) {
        self.cluster = cluster
        self.sentinels = sentinels
        self.sentinelMaster = sentinelMaster
        self.sentinelPassword = sentinelPassword
        self.url = url
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.timeout = timeout
        self.scheme = scheme
        self.connectTimeout = connectTimeout
        self.tlsCA = tlsCA
        self.tlsCert = tlsCert
        self.tlsKey = tlsKey
        self.tlsVerifyPeer = tlsVerifyPeer
        self.tlsVerifyPeerName = tlsVerifyPeerName
        self.tlsPeerName = tlsPeerName
        self.names = names
    }
}
