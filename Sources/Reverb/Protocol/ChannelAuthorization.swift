/// Channel authorization signatures (`protocol.md` §4.3): what an auth endpoint returns and the
/// server checks, in one place for the server, the bench and the tests.
public enum ChannelAuthorization {
    /// The string an auth endpoint signs: `socket_id:channel[:channel_data]`.
    static func stringToSign(socketID: String, channel: String, channelData: String?) -> String {
        if let channelData, !channelData.isEmpty {
            return "\(socketID):\(channel):\(channelData)"
        }
        return "\(socketID):\(channel)"
    }

    /// The `auth` value for a subscription: `key:` and the hex HMAC-SHA256 of the string to sign.
    ///
    /// - Parameter channelData: A presence channel's `channel_data` JSON, signed as sent; nil or empty
    ///   for other channels.
    public static func auth(key: String, secret: String, socketID: String, channel: String, channelData: String? = nil)
        -> String
    {
        "\(key):" + signature(secret: secret, socketID: socketID, channel: channel, channelData: channelData)
    }

    /// Whether `auth` (`key:signature`; the key part is not checked) signs this subscription.
    static func verify(auth: String?, secret: String, socketID: String, channel: String, channelData: String?)
        -> Bool
    {
        authMatches(auth, signature(secret: secret, socketID: socketID, channel: channel, channelData: channelData))
    }

    /// Compares the part of `auth` after its first `:` (all of it when there is none) with
    /// `expected` in constant time; absent or empty `auth` fails (`protocol.md` §4.3, §13.1).
    static func authMatches(_ auth: String?, _ expected: String) -> Bool {
        guard let auth, !auth.isEmpty else { return false }
        let given: Substring
        if let colon = auth.firstIndex(of: ":") {
            given = auth[auth.index(after: colon)...]
        } else {
            given = Substring(auth)
        }
        return Signature.constantTimeEquals(String(given), expected)
    }

    private static func signature(secret: String, socketID: String, channel: String, channelData: String?) -> String {
        Signature.hmacSHA256Hex(
            key: secret, message: stringToSign(socketID: socketID, channel: channel, channelData: channelData))
    }
}
