@testable import Reverb

/// Loads from in-memory sources: the process environment, a `.env` text and a config file text.
func loadConfiguration(
    environment: [String: String] = [:],
    dotEnv: String? = nil,
    file: String? = nil,
    flags: ConfigurationFlags = ConfigurationFlags(),
    readError: @escaping (String) -> String? = { _ in nil }
) throws(ConfigurationError) -> ReverbConfiguration {
    var input = ConfigurationInput(flags: flags, environment: environment)
    if let dotEnv { input.dotEnv = (".env", dotEnv) }
    if let file { input.configFile = .contents(fileName: "config/reverb.json", text: file) }
    input.readError = readError
    return try ConfigurationLoader.load(input)
}

/// The problems a load reports, or `[]` when it succeeds.
func configurationProblems(
    environment: [String: String] = [:],
    dotEnv: String? = nil,
    file: String? = nil,
    flags: ConfigurationFlags = ConfigurationFlags(),
    readError: @escaping (String) -> String? = { _ in nil }
) -> [String] {
    do {
        _ = try loadConfiguration(
            environment: environment, dotEnv: dotEnv, file: file, flags: flags, readError: readError)
        return []
    } catch {
        return error.messages
    }
}

/// A JSON object nesting `value` (JSON text) under `path`: `["a", "b"]` gives `{"a": {"b": value}}`.
func nestedJSON(_ path: [String], _ value: String) -> String {
    path.reversed().reduce(value) { inner, key in "{\"\(key)\": \(inner)}" }
}

/// The environment defining the app `1` / `k` / `s`.
let environmentAppCredentials = ["REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"]
