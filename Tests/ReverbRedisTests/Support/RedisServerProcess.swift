import Foundation
import NIOCore
import NIOPosix
import ReverbRedis
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A `redis-server` from `PATH` on a free loopback port with its own temporary directory, for tests
/// that need a password, ACL users, TLS, a unix socket or a restart. Stop it with `stop()`.
///
/// The server daemonizes (the launcher that Subprocess runs exits at once) and is driven by the pid it
/// writes to its pidfile, so no child process outlives a `run` call.
final class RedisServerProcess {
    let port: Int
    let directory: URL
    private let baseArguments: [String]
    private var arguments: [String]
    private var pid: pid_t?

    /// Starts a server with `arguments` added to a throw-away configuration (no persistence) on a
    /// free loopback port (`--tls-port` with `tls`).
    static func start(_ arguments: [String] = [], tls: Bool = false) async throws -> RedisServerProcess {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let server = try RedisServerProcess(port: await freePort(), arguments: arguments, tls: tls)
            do {
                try await server.start()
                return server
            } catch {
                server.stop()
                lastError = error  // most likely the port was taken meanwhile: try another
            }
        }
        throw lastError ?? TestFailure("redis-server did not start")
    }

    private init(port: Int, arguments: [String], tls: Bool) throws {
        self.port = port
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("reverb-redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        let listen = tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]
        self.arguments = arguments
        self.baseArguments =
            listen + [
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
                "--logfile", Self.logFile(in: directory).path,
                "--daemonize", "yes", "--pidfile", Self.pidFile(in: directory).path,
            ]
    }

    /// Starts (or restarts) the server on the same port and waits until it accepts connections;
    /// `arguments` replaces the extra arguments given so far.
    func start(arguments: [String]? = nil) async throws {
        if let arguments { self.arguments = arguments }
        // A killed server leaves its pidfile behind; the log must hold this start's lines only.
        try? FileManager.default.removeItem(at: pidFile)
        try? FileManager.default.removeItem(at: logFile)
        let launcher = try await Subprocess.run(
            .path(FilePath(Self.executable("redis-server").path)),
            arguments: Arguments(baseArguments + self.arguments),
            output: .discarded,
            error: .string(limit: 64 * 1024)  // an unknown option is reported here, before the log opens
        )
        guard launcher.terminationStatus == .exited(0) else {
            throw TestFailure(
                "redis-server exited with \(launcher.terminationStatus): \(launcher.standardError) \(log)"
            )
        }
        let port = self.port
        try await eventually("redis-server listening on port \(port)") {
            // The daemon writes its pidfile once it listens; before that, and when it fails to listen,
            // only its log lines ("<pid>:M …") name it.
            let written = self.pidFromPidFile
            guard let pid = written ?? self.pidFromLog else { return false }
            guard Self.isRunning(pid) else {
                throw TestFailure("redis-server exited: \(self.log)")
            }
            self.pid = written
            guard written != nil else { return false }
            // Another test's server may hold a port picked at the same time: only our own
            // server's "ready" line proves the listener is ours.
            guard self.log.contains("Ready to accept connections") else { return false }
            return await Self.accepts(port: port)
        }
    }

    /// Whether the server was started and not killed or stopped since.
    var isRunning: Bool { pid.map(Self.isRunning) ?? false }

    /// Kills the server at once (SIGKILL) and waits until it is gone.
    func kill() async throws {
        guard let pid else { return }
        Self.send(SIGKILL, to: pid)
        try await eventually("redis-server exited") { !Self.isRunning(pid) }
        self.pid = nil
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open but unanswered.
    func suspend(_ suspended: Bool) {
        guard let pid else { return }
        Self.send(suspended ? SIGSTOP : SIGCONT, to: pid)
    }

    /// Kills the server and removes its directory.
    func stop() {
        // A start that failed half-way has not recorded the pid yet: the daemon may still be there.
        if let pid = pid ?? pidFromPidFile ?? pidFromLog, Self.isRunning(pid) {
            Self.send(SIGKILL, to: pid)
        }
        pid = nil
        try? FileManager.default.removeItem(at: directory)
    }

    var log: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? "(no log)"
    }

    private var logFile: URL { Self.logFile(in: directory) }
    private var pidFile: URL { Self.pidFile(in: directory) }
    private static func logFile(in directory: URL) -> URL { directory.appendingPathComponent("redis.log") }
    private static func pidFile(in directory: URL) -> URL { directory.appendingPathComponent("redis.pid") }

    private var pidFromPidFile: pid_t? {
        (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap {
            pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    private var pidFromLog: pid_t? {
        (try? String(contentsOf: logFile, encoding: .utf8))?
            .split(whereSeparator: \.isNewline)
            .compactMap { pid_t($0.prefix { $0.isNumber }) }.last
    }

    // The instance method `kill()` hides the C function of the same name.
    static func send(_ signal: Int32, to pid: pid_t) {
        #if canImport(Glibc)
            _ = Glibc.kill(pid, signal)
        #elseif canImport(Darwin)
            _ = Darwin.kill(pid, signal)
        #endif
    }

    /// Whether `pid` is alive. Only init reaps the daemonized server, and not at once, so a killed one
    /// may linger as a zombie (`Z` after the command name in `/proc/<pid>/stat`).
    private static func isRunning(_ pid: pid_t) -> Bool {
        #if os(Linux)
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let name = stat.lastIndex(of: ")")
            else { return false }
            let state = stat[stat.index(after: name)...].first { !$0.isWhitespace }
            return state != "Z" && state != "X"
        #else
            return Darwin.kill(pid, 0) == 0  // launchd reaps
        #endif
    }

    func configuration(
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: RedisConnectionConfiguration.TLS? = nil
    ) -> RedisConnectionConfiguration {
        RedisConnectionConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: port),
            username: username,
            password: password,
            database: database,
            // Set-up is a few round trips; beside every other suite on a 2-core CI machine the default
            // 5 s expired for scripted servers (2026-12-02). A frozen server's attempt simply completes
            // when it thaws; tests of the timeout set their own.
            connectTimeout: .seconds(20),
            tls: tls
        )
    }

    static func executable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestFailure("\(name) is not on PATH")
    }

    /// A loopback port that was free a moment ago.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    private static func accepts(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}
