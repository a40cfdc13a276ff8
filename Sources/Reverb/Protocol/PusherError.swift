/// A Pusher protocol error sent to a client as `pusher:error` (`protocol.md` §12). Messages are exact.
public struct PusherError: Error, Sendable, Hashable {
    public var code: Int
    public var message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    public static let applicationDoesNotExist = PusherError(code: 4001, message: "Application does not exist")
    public static let overConnectionQuota = PusherError(code: 4004, message: "Application is over connection quota")
    public static let originNotAllowed = PusherError(code: 4009, message: "Origin not allowed")
    public static let unauthorized = PusherError(code: 4009, message: "Connection is unauthorized")
    public static let notAMember = PusherError(
        code: 4009, message: "The client is not a member of the specified channel.")
    public static let invalidMessageFormat = PusherError(code: 4200, message: "Invalid message format")
    public static let pongNotReceived = PusherError(code: 4201, message: "Pong reply not received in time")
    public static let clientEventsDisabled = PusherError(
        code: 4301, message: "The app does not have client messaging enabled.")
    public static let rateLimitExceeded = PusherError(code: 4301, message: "Rate limit exceeded")
    /// After `signin_success` when the watchlist held more than 100 ids (`protocol.md` §13.4).
    public static let watchlistLimitExceeded = PusherError(
        code: 4302, message: "Watchlist limit exceeded. Only the first 100 user IDs are accepted.")
    /// `user_authentication_timeout` passed without a sign-in (`protocol.md` §13.5); then Close 4009.
    public static let userAuthenticationTimeout = PusherError(
        code: 4009, message: "Connection not authorized within timeout.")
}
