/// Channel name rules and types by prefix (`protocol.md` §3).
public enum ChannelName {
    /// The channel kinds of `protocol.md` §3.2.
    public struct Kind: Sendable, Hashable {
        /// Subscribing needs a signed `auth`.
        public var requiresSignature: Bool
        public var isPresence: Bool
        /// Keeps its last event for late subscribers.
        public var isCache: Bool

        public static let `public` = Kind(requiresSignature: false, isPresence: false, isCache: false)
        public static let `private` = Kind(requiresSignature: true, isPresence: false, isCache: false)
        public static let privateCache = Kind(requiresSignature: true, isPresence: false, isCache: true)
        public static let presence = Kind(requiresSignature: true, isPresence: true, isCache: false)
        public static let presenceCache = Kind(requiresSignature: true, isPresence: true, isCache: true)
        public static let cache = Kind(requiresSignature: false, isPresence: false, isCache: true)
    }

    /// Longest valid name.
    public static let maximumLength = 200

    /// The prefix of a signed-in user's own channel (`protocol.md` §13.2): any string may follow.
    public static let serverToUserPrefix = "#server-to-user-"

    /// Whether `name` is a `#server-to-user-` channel: public-type, never listed by `/channels`.
    public static func isServerToUser(_ name: String) -> Bool {
        name.hasPrefix(serverToUserPrefix)
    }

    /// The fan-out key name under which local sockets watching `identity` wait for its watchlist
    /// events. Never a channel: clients cannot subscribe to `#` names (`protocol.md` §13.2), the HTTP
    /// API refuses them, and the directory never records it.
    static func watchers(of identity: String) -> String {
        "#watchlist:" + identity
    }

    /// Whether `name` matches `^[-a-zA-Z0-9_=@,.;]{1,200}$`.
    public static func isValid(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= maximumLength else { return false }
        return utf8.allSatisfy(isNameByte)
    }

    @inline(__always)
    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ","),
            UInt8(ascii: "."), UInt8(ascii: ";"):
            return true
        default:
            return false
        }
    }

    /// The kind of a channel by its prefix; the first match wins and the dash is part of each prefix.
    public static func kind(of name: String) -> Kind {
        if name.hasPrefix("private-encrypted-cache-") { return .privateCache }
        if name.hasPrefix("private-encrypted-") { return .private }
        if name.hasPrefix("private-cache-") { return .privateCache }
        if name.hasPrefix("private-") { return .private }
        if name.hasPrefix("presence-cache-") { return .presenceCache }
        if name.hasPrefix("presence-") { return .presence }
        if name.hasPrefix("cache-") { return .cache }
        return .public
    }
}
