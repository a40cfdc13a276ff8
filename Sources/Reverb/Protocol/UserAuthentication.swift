/// User authentication signatures and the checks of a `pusher:signin` (`protocol.md` §13.1), in
/// one place for the server, the bench and the tests.
public enum UserAuthentication {
    /// The string a user-auth endpoint signs: `socket_id::user::user_data`.
    static func stringToSign(socketID: String, userData: String) -> String {
        "\(socketID)::user::\(userData)"
    }

    /// The `auth` value for a sign-in: `key:` and the hex HMAC-SHA256 of the string to sign
    /// (what `authenticateUser` returns in the server SDKs).
    public static func auth(key: String, secret: String, socketID: String, userData: String) -> String {
        "\(key):" + signature(secret: secret, socketID: socketID, userData: userData)
    }

    /// Whether `auth` (`key:signature`; the key part is not checked, as for channels) signs
    /// `user_data` for this socket.
    static func verify(auth: String?, secret: String, socketID: String, userData: String) -> Bool {
        ChannelAuthorization.authMatches(auth, signature(secret: secret, socketID: socketID, userData: userData))
    }

    /// Steps 2–4 of a sign-in: format, signature, one user per connection. The first failure is the
    /// error to send; nothing has changed then.
    /// - Parameter signedInAs: the identity the socket already signed in as, if any.
    static func check(
        auth: String?, userData: String, secret: String, socketID: String, signedInAs: String?
    ) -> Result<UserData, PusherError> {
        guard let user = UserData(userData) else { return .failure(.invalidMessageFormat) }
        guard verify(auth: auth, secret: secret, socketID: socketID, userData: userData) else {
            return .failure(.unauthorized)
        }
        if let signedInAs, signedInAs != user.id { return .failure(.unauthorized) }
        return .success(user)
    }

    private static func signature(secret: String, socketID: String, userData: String) -> String {
        Signature.hmacSHA256Hex(key: secret, message: stringToSign(socketID: socketID, userData: userData))
    }
}
