/// One entry of an app's `webhooks` list (`http-api.md` §8.1): where to POST, which events, extra
/// headers and a channel-name filter.
public struct Webhook: Sendable, Hashable {
    /// The `name` of a webhook event, as Pusher spells it.
    public enum EventType: String, Sendable, Hashable, CaseIterable {
        case channelOccupied = "channel_occupied"
        case channelVacated = "channel_vacated"
        case memberAdded = "member_added"
        case memberRemoved = "member_removed"
        case clientEvent = "client_event"
        case cacheMiss = "cache_miss"
        case subscriptionCount = "subscription_count"

        /// What an entry without `event_types` gets: all but the opt-in `subscription_count`.
        public static let defaults: Set<EventType> = Set(allCases.filter { $0 != .subscriptionCount })
    }

    /// Absolute `http://` or `https://` URL, POSTed to as written.
    public var url: String
    /// `event_types`; default `EventType.defaults`.
    public var eventTypes: Set<EventType>
    /// `headers`: added to every POST (never replacing `X-Pusher-Key` or `X-Pusher-Signature`).
    public var headers: [String: String]
    /// `filter.channel_name_starts_with`.
    public var channelNameStartsWith: String?
    /// `filter.channel_name_ends_with`.
    public var channelNameEndsWith: String?

    public init(
        url: String, eventTypes: Set<EventType> = EventType.defaults, headers: [String: String] = [:],
        channelNameStartsWith: String? = nil, channelNameEndsWith: String? = nil
    ) {
        self.url = url
        self.eventTypes = eventTypes
        self.headers = headers
        self.channelNameStartsWith = channelNameStartsWith
        self.channelNameEndsWith = channelNameEndsWith
    }

    /// Whether an event of `type` on `channel` goes to this entry: its type is listed and the channel
    /// matches every filter rule given.
    public func accepts(_ type: EventType, channel: String) -> Bool {
        guard eventTypes.contains(type) else { return false }
        if let prefix = channelNameStartsWith, !channel.hasPrefix(prefix) { return false }
        if let suffix = channelNameEndsWith, !channel.hasSuffix(suffix) { return false }
        return true
    }

    /// True for an absolute `http://` or `https://` URL with a host.
    static func isHTTPURL(_ text: String) -> Bool {
        let lowered = text.lowercased()
        let rest: Substring
        if lowered.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else if lowered.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else {
            return false
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        guard !host.isEmpty, !host.hasPrefix(":") else { return false }
        return !text.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F }
    }
}
