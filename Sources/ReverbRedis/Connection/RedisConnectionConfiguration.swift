/// Where and how to reach one Redis server.
///
/// `RedisClientFactory` builds this from Laravel-style settings; the defaults here match those of
/// `REDIS_*` (spec `scaling.md` §6.3).
public struct RedisConnectionConfiguration: Sendable, Equatable {
    /// Where the server listens.
    public enum Endpoint: Sendable, Equatable {
        /// A host name or IP address (IPv6 without brackets) and a port.
        case tcp(host: String, port: Int)
        /// A unix domain socket path.
        case unixSocket(path: String)
    }

    /// TLS settings for `rediss://`; TLS is used exactly when `RedisConnectionConfiguration.tls` is set.
    public struct TLS: Sendable, Equatable {
        /// PEM file of trusted CA certificates (`REDIS_TLS_CA`). Default `nil`: the system trust store.
        public var caFile: String?
        /// PEM client certificate chain for mutual TLS (`REDIS_TLS_CERT`). Default `nil`: none.
        public var certificateFile: String?
        /// PEM private key of `certificateFile` (`REDIS_TLS_KEY`). Default `nil`: none.
        public var keyFile: String?
        /// Verify the server's certificate and name (`REDIS_TLS_VERIFY_PEER`). Default `true`.
        public var verifyPeer: Bool
        /// The name verified in the certificate and sent as SNI (`tls.peer_name`). Default `nil`: the
        /// endpoint's host.
        public var serverName: String?
        /// With `verifyPeer`, also check that the certificate names the server (`tls.verify_peer_name`).
        /// Default `true`.
        public var verifyHostname: Bool

        /// TLS settings; every default is described on its property.
        public init(
            caFile: String? = nil,
            certificateFile: String? = nil,
            keyFile: String? = nil,
            verifyPeer: Bool = true,
            serverName: String? = nil,
            verifyHostname: Bool = true
        ) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyPeer = verifyPeer
            self.serverName = serverName
            self.verifyHostname = verifyHostname
        }
    }

    /// The server address. Default `127.0.0.1:6379` (`REDIS_HOST`, `REDIS_PORT`).
    public var endpoint: Endpoint
    /// ACL user sent with `AUTH <username> <password>` (`REDIS_USERNAME`). Default `nil`; ignored without a password.
    public var username: String?
    /// Password for `AUTH` (`REDIS_PASSWORD`). Default `nil`: no `AUTH`.
    public var password: String?
    /// Database chosen with `SELECT` when not 0 (`REDIS_DB`). Default 0. Pub/sub ignores it.
    public var database: Int
    /// Bound on connecting, the TLS handshake and the setup commands (`REDIS_CONNECT_TIMEOUT`). Default 5 s.
    public var connectTimeout: Duration
    /// TLS settings; `nil` (the default) means plain TCP or a unix socket.
    public var tls: TLS?

    /// A configuration; every default is described on its property.
    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1", port: 6379),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        tls: TLS? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.tls = tls
    }
}

extension RedisConnectionConfiguration.Endpoint: CustomStringConvertible {
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixSocket(let path): "unix:\(path)"
        }
    }
}
