/// The dashboard's routes under `{prefix}/dashboard` (docs.md "Dashboard"), matched on decoded
/// path segments after `dashboard`.
enum DashboardRoute: Equatable {
    /// `GET /dashboard`: the page with a session, else a redirect to the login page.
    case page
    /// `GET /dashboard/login` (the form), `POST` (form-encoded `app_id` + `secret`, or `password`).
    case login
    /// `POST /dashboard/logout`.
    case logout
    /// `GET /dashboard/assets/{name}`: the page's script and style sheet.
    case asset(String)
    /// `GET /dashboard/api/session`: the session's scope, its apps and its CSRF token.
    case session
    /// `GET /dashboard/api/overview?app=`: the latest figures of this node and the cluster.
    case overview
    /// `GET /dashboard/api/apps/{appId}/channels?prefix=`: occupied channels, cluster-wide counts.
    case channels(appID: String)
    /// `GET /dashboard/api/apps/{appId}/channels/{channel}`: count, members, cached event.
    case channel(appID: String, channel: String)
    /// `POST /dashboard/api/apps/{appId}/events`: a test event (CSRF token required).
    case events(appID: String)
    /// `GET /dashboard/api/stream?app=`: Server-Sent Events, overview every second, debug events.
    case stream

    var allowedMethods: [String] {
        switch self {
        case .login: return ["GET", "HEAD", "POST"]
        case .logout, .events: return ["POST"]
        case .stream: return ["GET"]
        case .page, .asset, .session, .overview, .channels, .channel: return ["GET", "HEAD"]
        }
    }

    /// Whether the route changes state, and so needs the session's CSRF token.
    var changesState: Bool {
        switch self {
        case .logout, .events: return true
        default: return false
        }
    }

    /// The app id in the path, if any.
    var appID: String? {
        switch self {
        case .channels(let id), .channel(let id, _), .events(let id): return id
        default: return nil
        }
    }

    /// Matches the segments after `dashboard`.
    static func match(_ s: [String]) -> DashboardRoute? {
        switch s.count {
        case 0: return .page
        case 1 where s[0] == "login": return .login
        case 1 where s[0] == "logout": return .logout
        case 2 where s[0] == "assets": return .asset(s[1])
        case 2 where s[0] == "api":
            switch s[1] {
            case "session": return .session
            case "overview": return .overview
            case "stream": return .stream
            default: return nil
            }
        case 4 where s[0] == "api" && s[1] == "apps" && s[3] == "channels": return .channels(appID: s[2])
        case 4 where s[0] == "api" && s[1] == "apps" && s[3] == "events": return .events(appID: s[2])
        case 5 where s[0] == "api" && s[1] == "apps" && s[3] == "channels": return .channel(appID: s[2], channel: s[4])
        default: return nil
        }
    }
}
