/// A setting's value as the winning source gave it, before it is checked against its key's type.
struct ResolvedSetting: Equatable {
    /// Where a value came from; its `label` starts every message about it.
    enum Source: Equatable {
        case flag(String)
        case environment(String)
        case dotEnv(fileName: String, line: Int, variable: String)
        case configFile(fileName: String, keyPath: String)

        /// `--port`, `REVERB_SERVER_PORT`, `.env:3: REVERB_SERVER_PORT`, `config/reverb.json: servers.reverb.port`.
        var label: String {
            switch self {
            case .flag(let name): name
            case .environment(let name): name
            case .dotEnv(let fileName, let line, let variable): "\(fileName):\(line): \(variable)"
            case .configFile(let fileName, let keyPath): "\(fileName): \(keyPath)"
            }
        }

        var isFlag: Bool {
            if case .flag = self { return true }
            return false
        }

        var isConfigFile: Bool {
            if case .configFile = self { return true }
            return false
        }
    }

    /// Environment values arrive after `EnvironmentValue.interpret`: strings, booleans or null.
    var value: JSONValue
    var source: Source
}
