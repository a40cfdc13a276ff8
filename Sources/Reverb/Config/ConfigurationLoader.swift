#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Loads the configuration from flags, the process environment, `.env` and the config file
/// (`config.md` §1–§5), validating every key and reporting every problem at once (§7).
public enum ConfigurationLoader {
    /// The config file used when neither `--config` nor `REVERB_CONFIG` names one, if it exists.
    public static let defaultConfigFile = "config/reverb.json"

    /// Reads the files below `workingDirectory` and builds the configuration.
    /// - Parameters:
    ///   - flags: the command line's flags, which beat every other source.
    ///   - environment: the process environment (`ProcessInfo.processInfo.environment`).
    ///   - workingDirectory: where `.env` and `config/reverb.json` are looked for, and relative paths start.
    /// - Throws: `ConfigurationError` with every problem found; its `exitCode` is 64 when a flag is wrong.
    public static func load(
        flags: ConfigurationFlags,
        environment: [String: String],
        workingDirectory: String
    ) throws(ConfigurationError) -> ReverbConfiguration {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : workingDirectory + "/" + path
        }
        var input = ConfigurationInput(flags: flags, environment: environment)
        input.readError = { path in
            if case .failure(let reason) = readFile(atPath: absolute(path)) { return reason.description }
            return nil
        }

        var dotEnvName = ".env"
        if let appEnvironment = environment["APP_ENV"], !appEnvironment.isEmpty,
            fileExists(atPath: absolute(".env.\(appEnvironment)"))
        {
            dotEnvName = ".env.\(appEnvironment)"
        }
        if fileExists(atPath: absolute(dotEnvName)) {
            switch readFile(atPath: absolute(dotEnvName)) {
            case .success(let bytes):
                input.dotEnv = (dotEnvName, String(decoding: bytes, as: UTF8.self))
            case .failure(let reason):
                input.problems.append(ConfigurationError.Problem("\(dotEnvName): cannot read: \(reason)."))
            }
        }

        let located = locateConfigFile(flags: flags, environment: environment, dotEnv: input.dotEnv)
        if let (path, label, isFlag) = located {
            if !fileExists(atPath: absolute(path)) {
                input.problems.append(
                    ConfigurationError.Problem("\(label): \"\(path)\" does not exist.", isFromFlag: isFlag))
                input.configFile = .unavailable
            } else {
                switch readFile(atPath: absolute(path)) {
                case .success(let bytes):
                    input.configFile = .contents(fileName: path, text: String(decoding: bytes, as: UTF8.self))
                case .failure(let reason):
                    input.problems.append(
                        ConfigurationError.Problem("\(label): cannot read \"\(path)\": \(reason).", isFromFlag: isFlag)
                    )
                    input.configFile = .unavailable
                }
            }
        } else if fileExists(atPath: absolute(defaultConfigFile)) {
            switch readFile(atPath: absolute(defaultConfigFile)) {
            case .success(let bytes):
                input.configFile = .contents(fileName: defaultConfigFile, text: String(decoding: bytes, as: UTF8.self))
            case .failure(let reason):
                input.problems.append(ConfigurationError.Problem("\(defaultConfigFile): cannot read: \(reason)."))
                input.configFile = .unavailable
            }
        }
        return try load(input)
    }

    /// Builds the configuration from sources already read (the files as text): the testable core.
    static func load(_ input: ConfigurationInput) throws(ConfigurationError) -> ReverbConfiguration {
        try ConfigurationBuilder.build(input)
    }

    /// `--config`, else `REVERB_CONFIG` (environment, then `.env`): the path, the label naming its
    /// source in messages, and whether that source is a flag.
    private static func locateConfigFile(
        flags: ConfigurationFlags,
        environment: [String: String],
        dotEnv: (fileName: String, contents: String)?
    ) -> (path: String, label: String, isFlag: Bool)? {
        if let path = flags.configFile { return (path, "--config", true) }
        if let raw = environment["REVERB_CONFIG"], case .string(let path)? = EnvironmentValue.interpret(raw),
            !path.isEmpty
        {
            return (path, "REVERB_CONFIG", false)
        }
        guard let dotEnv,
            let entry = (try? DotEnvParser.parse(dotEnv.contents, environment: environment))?
                .last(where: { $0.name == "REVERB_CONFIG" }),
            let raw = entry.value, case .string(let path)? = EnvironmentValue.interpret(raw), !path.isEmpty
        else { return nil }
        return (path, "\(dotEnv.fileName):\(entry.line): REVERB_CONFIG", false)
    }

    private static func fileExists(atPath path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0
    }

    /// The whole file, or the system's reason (`No such file or directory`) when it cannot be read.
    static func readFile(atPath path: String) -> Result<[UInt8], ReadFailure> {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(errno: errno))
            }
            if count == 0 { return .success(bytes) }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    /// A failed read, described by `strerror`.
    struct ReadFailure: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }
}
