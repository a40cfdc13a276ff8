// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import Logging
    import NIOCore
    import NIOEmbedded

    @testable import Reverb
    @testable import ReverbRedis

    /// Loading the configuration from `config/reverb.json` and `.env` as text (`config.md` §3–§7),
    /// through `ConfigurationLoader.load(_:)`, the loader's core that takes the files' contents: nothing
    /// is read from disk (TLS files count as readable). The first byte picks what the rest is: the
    /// config file; the `.env` file; or both, `.env` first, split at the first NUL byte.
    ///
    /// Invariants: nothing traps; a refusal lists at least one problem, each a non-empty message, none
    /// from a flag (no flags are given); a configuration has at least one app, every app with non-empty
    /// credentials, an id that is one path segment, ids and keys distinct, and every limit within the
    /// range §4.3 allows; a port within 0–65535; and the node the server builds from it (with its
    /// cluster node when scaling is on) is built, or refused for Redis settings with problems that each
    /// name a setting.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var fuzzInput = FuzzInput(bytes)
        let mode = fuzzInput.byte() % 3
        let rest = fuzzInput.rest()
        var input = ConfigurationInput()
        switch mode {
        case 0:
            input.configFile = .contents(fileName: "config/reverb.json", text: String(decoding: rest, as: UTF8.self))
        case 1:
            input.dotEnv = (".env", String(decoding: rest, as: UTF8.self))
        default:
            let split = rest.firstIndex(of: 0) ?? rest.endIndex
            input.dotEnv = (".env", String(decoding: rest[..<split], as: UTF8.self))
            let file = split < rest.endIndex ? rest[(split + 1)...] : []
            input.configFile = .contents(fileName: "config/reverb.json", text: String(decoding: file, as: UTF8.self))
        }
        let configuration: ReverbConfiguration
        do {
            configuration = try ConfigurationLoader.load(input)
        } catch {
            require(!error.problems.isEmpty, "a refusal without problems")
            for problem in error.problems {
                require(!problem.message.isEmpty, "an empty problem message")
                require(!problem.isFromFlag, "a problem blamed on a flag: \(problem.message)")
            }
            require(error.exitCode == 78, "exit code \(error.exitCode) without flags")
            return
        }
        check(configuration)
    }

    func check(_ configuration: ReverbConfiguration) {
        require(!configuration.apps.isEmpty, "a configuration without apps")
        require(Set(configuration.apps.map(\.id)).count == configuration.apps.count, "two apps share an id")
        require(Set(configuration.apps.map(\.key)).count == configuration.apps.count, "two apps share a key")
        for app in configuration.apps {
            require(!app.id.isEmpty && !app.key.isEmpty && !app.secret.isEmpty, "an app with an empty credential")
            require(!app.id.contains("/"), "app id \(app.id.debugDescription) is more than one path segment")
            require(app.pingInterval >= 1 && app.activityTimeout >= 1, "app \(app.id): intervals below 1")
            require(app.maxConnections.map { $0 >= 1 } ?? true, "app \(app.id): max_connections below 1")
            require(app.maxMessageSize >= 0, "app \(app.id): negative max_message_size")
            require(
                app.rateLimiting.maxAttempts >= 1 && app.rateLimiting.decaySeconds >= 1,
                "app \(app.id): rate limits below 1")
            require(
                app.presenceLimits.maxMembers >= 0 && app.presenceLimits.maxMemberSize >= 0,
                "app \(app.id): negative presence limits")
        }
        require((0...65535).contains(configuration.server.port), "port \(configuration.server.port)")
        require(configuration.server.maxRequestSize >= 0, "negative max_request_size")
        for warning in configuration.warnings { require(!warning.isEmpty, "an empty warning") }

        // What the server does with a configuration it was given: the node is built (the cluster node
        // too when scaling is on), or refused for its Redis settings with problems naming them. Redis
        // TLS files named by the input are not opened (a fuzzed path could be a device that never ends).
        let settings = configuration.scaling.redis
        let names = settings.names
        let allNames = [
            names.url, names.host, names.port, names.username, names.password, names.database, names.timeout,
            names.scheme, names.connectTimeout, names.tlsCA, names.tlsCert, names.tlsKey, names.tlsVerifyPeer,
        ]
        guard configuration.scaling.enabled, settings.tlsCA == nil, settings.tlsCert == nil, settings.tlsKey == nil
        else { return }
        let loop = EmbeddedEventLoop()
        defer { try? loop.syncShutdownGracefully() }
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        do {
            _ = try Node(configuration: configuration, eventLoopGroup: loop, logger: logger)
        } catch let error as ReverbServer.ScalingSetupError {
            require(!error.problems.isEmpty, "Redis settings refused without problems")
            for problem in error.problems {
                require(allNames.contains { problem.contains($0) }, "a Redis problem naming no setting: \(problem)")
            }
        } catch {
            require(false, "the node refused the configuration with \(error)")
        }
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzConfigFile_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzConfigFile", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzConfigFile") }
    }
#endif
