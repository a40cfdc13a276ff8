/// Everything one load reads, gathered by `ConfigurationLoader` from the machine or given by a test.
struct ConfigurationInput {
    /// The config file of §3.1.
    enum ConfigFile {
        /// No file in use: the embedded default app may apply.
        case none
        /// A file's text and its name as messages show it (`config/reverb.json`, or the path as given).
        case contents(fileName: String, text: String)
        /// A file is in use but could not be read; the problem is already in `problems`.
        case unavailable
    }

    var flags = ConfigurationFlags()
    var environment: [String: String] = [:]
    /// The `.env` file's name as messages show it (`.env`, `.env.production`) and its text.
    var dotEnv: (fileName: String, contents: String)?
    var configFile = ConfigFile.none
    /// Problems found while locating and reading the files.
    var problems: [ConfigurationError.Problem] = []
    /// Why a file named by a setting (a TLS certificate) cannot be read, or `nil` when it can.
    var readError: (String) -> String? = { _ in nil }
}
