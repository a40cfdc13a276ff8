/// The parsed sources of one load, asked key by key in precedence order (`config.md` §1):
/// flag, process environment, `.env`, config file.
struct ConfigurationSources {
    var flags: [String: String]
    var environment: [String: String]
    /// The `.env` entries still set at the end of the file, by name.
    var dotEnv: [String: DotEnvParser.Entry]
    var dotEnvFileName: String
    /// The config file's root object; `nil` when there is none.
    var file: JSONObject?
    var fileName: String

    /// A flag's value, as given.
    func flag(_ name: String?) -> ResolvedSetting? {
        guard let name, let value = flags[name] else { return nil }
        return ResolvedSetting(value: .string(value), source: .flag(name))
    }

    /// A variable from the process environment, else from `.env`, after the §1 treatment.
    func variable(_ name: String?) -> ResolvedSetting? {
        guard let name else { return nil }
        if let raw = environment[name], let value = EnvironmentValue.interpret(raw) {
            return ResolvedSetting(value: value, source: .environment(name))
        }
        if let entry = dotEnv[name], let raw = entry.value, let value = EnvironmentValue.interpret(raw) {
            return ResolvedSetting(
                value: value,
                source: .dotEnv(fileName: dotEnvFileName, line: entry.line, variable: name)
            )
        }
        return nil
    }

    /// The config file's root, for reading keys below it.
    var root: FileSection { FileSection(object: file, path: "", fileName: fileName) }

    /// The first source that sets the key: flag, then environment and `.env`, then the file.
    func resolve(flag: String? = nil, variable name: String? = nil, file: ResolvedSetting? = nil) -> ResolvedSetting? {
        self.flag(flag) ?? variable(name) ?? file
    }
}

/// An object of the config file and its key path, for reading keys below it.
struct FileSection {
    var object: JSONObject?
    /// `servers.reverb`, `apps.apps[0]`; empty for the root.
    var path: String
    var fileName: String

    func keyPath(_ keys: [String]) -> String {
        let tail = keys.joined(separator: ".")
        return path.isEmpty ? tail : path + "." + tail
    }

    /// The value at `keys` below this object; `nil` when missing or `null` ("not set").
    func value(_ keys: String...) -> ResolvedSetting? {
        value(keys)
    }

    func value(_ keys: [String]) -> ResolvedSetting? {
        guard var current = object, let last = keys.last else { return nil }
        for key in keys.dropLast() {
            guard let next = current[key]?.objectValue else { return nil }
            current = next
        }
        guard let value = current[last], !value.isNull else { return nil }
        return ResolvedSetting(value: value, source: .configFile(fileName: fileName, keyPath: keyPath(keys)))
    }

    /// The object at `key`, empty when missing or not an object.
    func section(_ key: String) -> FileSection {
        FileSection(object: object?[key]?.objectValue, path: keyPath([key]), fileName: fileName)
    }

    /// The object at element `index` of the list at `key`; without an object when it is not one.
    func section(_ key: String, _ index: Int) -> FileSection {
        let element = object?[key]?.arrayValue.flatMap { index < $0.count ? $0[index] : nil }
        return FileSection(object: element?.objectValue, path: "\(keyPath([key]))[\(index)]", fileName: fileName)
    }
}
