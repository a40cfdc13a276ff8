// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport

    @testable import ReverbRedis

    /// Redis settings as `REDIS_URL` and its companions give them (`scaling.md` §6): the input's first
    /// line is the URL; further lines, when present, are host, port, username, password, database,
    /// timeout, scheme, connect timeout, `tls.verify_peer`, `tls.verify_peer_name`, `tls.peer_name`,
    /// then the topology: `REDIS_CLUSTER`, `REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`, `REDIS_SENTINEL_PASSWORD`.
    /// TLS file settings are left unset, so `RedisClientFactory(settings:)` reads nothing from disk.
    ///
    /// Invariants: nothing traps; `RedisClientFactory(settings:)` either builds an endpoint or throws
    /// `RedisSettingsError` with problems, each naming the setting it is about; it agrees with
    /// `RedisSettingsParser`; and an endpoint is usable: a TCP port in 1–65535, a non-empty socket path,
    /// a database ≥ 0, positive timeouts, and for TCP, TLS exactly for `rediss://`, `tls://` or scheme
    /// `tls`/`rediss`; a Redis Cluster or Sentinel topology exactly when its list is set and alone, with
    /// every listed address usable.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
        func line(_ index: Int) -> String? { index < lines.count ? lines[index] : nil }
        let settings = RedisSettings(
            url: line(0), host: line(1), port: line(2), username: line(3), password: line(4), database: line(5),
            timeout: line(6), scheme: line(7), connectTimeout: line(8), tlsVerifyPeer: line(9),
            tlsVerifyPeerName: line(10), tlsPeerName: line(11), cluster: line(12), sentinels: line(13),
            sentinelMaster: line(14), sentinelPassword: line(15))
        let names = settings.names
        let allNames = [
            names.url, names.host, names.port, names.username, names.password, names.database, names.timeout,
            names.scheme, names.connectTimeout, names.tlsCA, names.tlsCert, names.tlsKey, names.tlsVerifyPeer,
            names.cluster, names.sentinels,
        ]
        let parsed = Result { () throws(RedisSettingsError) in try RedisSettingsParser.parse(settings) }
        let factory: RedisClientFactory
        do {
            factory = try RedisClientFactory(settings: settings)
        } catch {
            require(!error.problems.isEmpty, "RedisSettingsError without problems")
            for problem in error.problems {
                require(!problem.isEmpty, "an empty problem")
                require(allNames.contains { problem.contains($0) }, "a problem naming no setting: \(problem)")
            }
            if case .failure(let parserError) = parsed {
                require(parserError == error, "the factory and the parser disagree: \(error) vs \(parserError)")
            } else {
                require(false, "the factory refused what the parser accepted: \(error)")
            }
            return
        }
        guard case .success(let result) = parsed else {
            return require(false, "the factory accepted what the parser refused")
        }
        let configuration = factory.configuration
        require(result.configuration == configuration, "the factory and the parser built different endpoints")
        switch configuration.endpoint {
        case .tcp(let host, let port):
            require((1...65535).contains(port), "port \(port)")
            require(!host.isEmpty, "an empty host")
        case .unixSocket(let path):
            require(!path.isEmpty, "an empty socket path")
        }
        require(configuration.database >= 0, "database \(configuration.database)")
        require(factory.timeout > .zero && configuration.connectTimeout > .zero, "a timeout that is not positive")
        for warning in factory.warnings { require(!warning.isEmpty, "an empty warning") }
        func isSet(_ index: Int) -> Bool { !(line(index) ?? "").isEmpty }
        require(!(isSet(12) && isSet(13)), "REDIS_CLUSTER and REDIS_SENTINELS both accepted")
        switch factory.topology {
        case .server:
            require(!isSet(12) && !isSet(13), "one server although a cluster or sentinels are listed")
        case .cluster(let seeds):
            require(isSet(12) && !seeds.isEmpty, "a cluster of \(seeds.count) seeds from \(line(12) ?? "nothing")")
            for seed in seeds { requireUsable(seed, "a cluster seed") }
        case .sentinel(let sentinel):
            require(isSet(13) && !sentinel.sentinels.isEmpty, "\(sentinel.sentinels.count) sentinels")
            require(!sentinel.masterName.isEmpty, "an empty master name")
            for address in sentinel.sentinels { requireUsable(address, "a sentinel") }
        }
        let url = line(0).flatMap(RedisURL.init)
        let scheme = url?.scheme ?? line(7).flatMap { $0.isEmpty ? nil : $0.lowercased() }
        // A host starting with "/" is a socket path whatever the scheme, and a socket has no TLS.
        guard case .tcp = configuration.endpoint else { return require(configuration.tls == nil, "TLS over a socket") }
        if let scheme, scheme == "rediss" || scheme == "tls" {
            require(configuration.tls != nil, "no TLS for scheme \(scheme)")
        } else if let scheme, ["redis", "tcp", "unix"].contains(scheme) {
            require(configuration.tls == nil, "TLS for scheme \(scheme)")
        }
    }

    func requireUsable(_ endpoint: RedisConnectionConfiguration.Endpoint, _ what: String) {
        guard case .tcp(let host, let port) = endpoint else { return require(false, "\(what) is not TCP") }
        require(!host.isEmpty && (1...65535).contains(port), "\(what) at \(host):\(port)")
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzRedisURL_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzRedisURL", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzRedisURL") }
    }
#endif
