/// Typed readers: each turns a resolved setting into a value of its key's type (`config.md` §5), or
/// records a problem naming the source and returns `nil`, so the caller falls back to the default.
/// A `null` setting also returns `nil`: "none" for nullable keys, the default for the others.
extension ConfigurationBuilder {
    mutating func report(_ setting: ResolvedSetting, _ body: String) {
        problems.append(
            ConfigurationError.Problem("\(setting.source.label): \(body)", isFromFlag: setting.source.isFlag))
    }

    /// The value as it appears in messages, quoted.
    static func quoted(_ value: JSONValue) -> String {
        switch value {
        case .string(let text), .number(let text): "\"\(text)\""
        case .bool(let flag): "\"\(flag)\""
        default: JSONWriter.string(value)
        }
    }

    /// Text of a string, number or boolean.
    private static func scalarText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text), .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    mutating func text(_ setting: ResolvedSetting?) -> String? {
        guard let setting, !setting.value.isNull else { return nil }
        guard let text = Self.scalarText(setting.value) else {
            report(setting, "expected a string, found \(JSONWriter.string(setting.value)).")
            return nil
        }
        return text
    }

    /// A string that must not be empty.
    mutating func nonEmptyText(_ setting: ResolvedSetting?) -> String? {
        guard let setting, let value = text(setting) else { return nil }
        if value.isEmpty {
            report(setting, "must not be empty.")
            return nil
        }
        return value
    }

    /// A string where empty means none (`hostname`, TLS files).
    mutating func optionalText(_ setting: ResolvedSetting?) -> String? {
        guard let value = text(setting), !value.isEmpty else { return nil }
        return value
    }

    mutating func integer(_ setting: ResolvedSetting?, minimum: Int) -> Int? {
        number(setting, "an integer >= \(minimum)") { ValueSyntax.integer($0).flatMap { $0 >= minimum ? $0 : nil } }
    }

    mutating func port(_ setting: ResolvedSetting?) -> Int? {
        number(setting, "a port number (0-65535)") {
            ValueSyntax.integer($0).flatMap { (0...65535).contains($0) ? $0 : nil }
        }
    }

    mutating func boolean(_ setting: ResolvedSetting?) -> Bool? {
        guard let setting, !setting.value.isNull else { return nil }
        if case .bool(let value) = setting.value { return value }
        if let text = Self.scalarText(setting.value), let value = ValueSyntax.boolean(text) { return value }
        report(setting, "\(Self.quoted(setting.value)) is not a boolean (true/false, 1/0, yes/no, on/off).")
        return nil
    }

    mutating func seconds(_ setting: ResolvedSetting?) -> Double? {
        number(setting, "a number of seconds > 0", ValueSyntax.seconds)
    }

    /// A string or number setting that `parse` accepts; otherwise "is not `expected`." is reported.
    mutating func number<Value>(
        _ setting: ResolvedSetting?, _ expected: String, _ parse: (String) -> Value?
    ) -> Value? {
        guard let setting, !setting.value.isNull else { return nil }
        switch setting.value {
        case .string(let text), .number(let text):
            if let value = parse(text) { return value }
        default: break
        }
        report(setting, "\(Self.quoted(setting.value)) is not \(expected).")
        return nil
    }

    /// One of `choices`, compared case-insensitively and returned in lower case.
    mutating func choice(_ setting: ResolvedSetting?, _ choices: [String]) -> String? {
        guard let setting, let value = text(setting) else { return nil }
        if choices.contains(value.lowercased()) { return value.lowercased() }
        let listed =
            choices.count > 1 ? choices.dropLast().joined(separator: ", ") + " or " + choices.last! : choices[0]
        report(setting, "\(Self.quoted(setting.value)) must be \(listed).")
        return nil
    }

    /// A comma-separated string or a JSON array of strings.
    mutating func list(_ setting: ResolvedSetting?) -> [String]? {
        guard let setting, !setting.value.isNull else { return nil }
        if case .string(let text) = setting.value { return ValueSyntax.list(text) }
        if let array = setting.value.arrayValue {
            let items = array.compactMap(Self.scalarText)
            if items.count == array.count {
                return items.map(ValueSyntax.trimmingBlanks).filter { !$0.isEmpty }
            }
        }
        report(setting, "expected a list of strings, found \(JSONWriter.string(setting.value)).")
        return nil
    }

    /// Redis addresses as `host:port,host:port` text: a string as it is, or a list of `"host:port"`
    /// strings or of `{"host":...,"port":...}` objects (Laravel's `clusters` shape).
    mutating func addressList(_ setting: ResolvedSetting?) -> String? {
        guard let setting, !setting.value.isNull else { return nil }
        if let text = Self.scalarText(setting.value) { return text }
        if let array = setting.value.arrayValue {
            var items: [String] = []
            for element in array {
                if let text = Self.scalarText(element) {
                    items.append(text)
                } else if let object = element.objectValue, let host = object["host"].flatMap(Self.scalarText) {
                    let port = object["port"].flatMap(Self.scalarText)
                    let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
                    items.append(port.map { "\(bracketed):\($0)" } ?? bracketed)
                } else {
                    report(
                        setting,
                        "expected \"host:port\" strings or {\"host\", \"port\"} objects, found \(JSONWriter.string(element))."
                    )
                    return nil
                }
            }
            return items.joined(separator: ",")
        }
        report(setting, "expected a list of addresses, found \(JSONWriter.string(setting.value)).")
        return nil
    }
}
