/// An app's `webhooks` list (`http-api.md` §8.1, `config.md` §4.3): from the config file, or for the
/// environment app `REVERB_APP_WEBHOOK_URL` and `REVERB_APP_WEBHOOK_EVENTS`, which replace the file's list.
extension ConfigurationBuilder {
    mutating func webhooks(_ sources: ConfigurationSources, file: FileSection?, useEnvironment: Bool) -> [Webhook] {
        if useEnvironment {
            let urlSetting = sources.variable("REVERB_APP_WEBHOOK_URL")
            let eventsSetting = sources.variable("REVERB_APP_WEBHOOK_EVENTS")
            if let urlSetting, let url = optionalText(urlSetting) {
                guard Webhook.isHTTPURL(url) else {
                    report(urlSetting, "\(Self.quoted(urlSetting.value)) is not an http or https URL.")
                    return []
                }
                let types = eventsSetting.flatMap { eventTypes($0) } ?? Webhook.EventType.defaults
                return [Webhook(url: url, eventTypes: types)]
            }
            if let eventsSetting, optionalText(eventsSetting) != nil {
                report(eventsSetting, "is set, but REVERB_APP_WEBHOOK_URL is not.")
            }
        }
        guard let file, let listSetting = file.value("webhooks") else { return [] }
        guard let list = listSetting.value.arrayValue else {
            report(listSetting, "expected a list of webhooks, found \(JSONWriter.string(listSetting.value)).")
            return []
        }
        var webhooks: [Webhook] = []
        for index in list.indices {
            if let webhook = webhook(file.section("webhooks", index)) { webhooks.append(webhook) }
        }
        return webhooks
    }

    private mutating func webhook(_ entry: FileSection) -> Webhook? {
        // Not an object: the file's schema check reports it.
        guard entry.object != nil else { return nil }
        guard let urlSetting = entry.value("url") else {
            problems.append(ConfigurationError.Problem("\(entry.fileName): \(entry.keyPath(["url"])) is missing."))
            return nil
        }
        guard let url = text(urlSetting) else { return nil }
        guard Webhook.isHTTPURL(url) else {
            report(urlSetting, "\(Self.quoted(urlSetting.value)) is not an http or https URL.")
            return nil
        }
        var webhook = Webhook(url: url)
        if let typesSetting = entry.value("event_types") {
            guard let types = eventTypes(typesSetting) else { return nil }
            webhook.eventTypes = types
        }
        if let headersSetting = entry.value("headers") {
            guard let object = headersSetting.value.objectValue else {
                report(headersSetting, "expected an object of header names and strings.")
                return nil
            }
            for (name, value) in object.entries {
                guard case .string(let text) = value else {
                    report(headersSetting, "header \(name): expected a string, found \(JSONWriter.string(value)).")
                    return nil
                }
                guard Self.isHeaderName(name), !text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" })
                else {
                    report(headersSetting, "\"\(name)\" is not a valid header.")
                    return nil
                }
                webhook.headers[name] = text
            }
        }
        let filter = entry.section("filter")
        if entry.value("filter") != nil, filter.object == nil { return nil }
        webhook.channelNameStartsWith = text(filter.value("channel_name_starts_with"))
        webhook.channelNameEndsWith = text(filter.value("channel_name_ends_with"))
        return webhook
    }

    /// A list of event type names, each one of `Webhook.EventType`.
    private mutating func eventTypes(_ setting: ResolvedSetting) -> Set<Webhook.EventType>? {
        guard let names = list(setting) else { return nil }
        var types = Set<Webhook.EventType>()
        for name in names {
            guard let type = Webhook.EventType(rawValue: name) else {
                let known = Webhook.EventType.allCases.map(\.rawValue).joined(separator: ", ")
                report(setting, "\"\(name)\" is not a webhook event type (\(known)).")
                return nil
            }
            types.insert(type)
        }
        return types
    }

    /// RFC 9110 token characters.
    private static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy {
                switch $0 {
                case "a"..."z", "A"..."Z", "0"..."9", "!", "#", "$", "%", "&", "'", "*", "+", "-", ".", "^", "_", "`",
                    "|", "~":
                    true
                default: false
                }
            }
    }
}
