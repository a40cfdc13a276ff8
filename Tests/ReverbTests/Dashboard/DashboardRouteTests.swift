import Testing

@testable import Reverb

/// `{prefix}/dashboard/...` routes exist only when the dashboard is on.
@Suite struct DashboardRouteTests {
    @Test(arguments: [
        ("/dashboard", Route.dashboard(.page)), ("/dashboard/login", .dashboard(.login)),
        ("/dashboard/api/stream", .dashboard(.stream)),
        ("/dashboard/assets/dashboard.js", .dashboard(.asset("dashboard.js"))),
        ("/dashboard/api/apps/1/channels", .dashboard(.channels(appID: "1"))),
        ("/dashboard/api/apps/1/channels/presence-a%2Fb", .dashboard(.channel(appID: "1", channel: "presence-a/b"))),
        ("/dashboard/api/apps/1/events", .dashboard(.events(appID: "1"))),
    ])
    func matches(_ path: String, _ route: Route) {
        #expect(Route.match(path: path[...], prefixSegments: [], dashboard: true) == route)
        #expect(Route.match(path: path[...], prefixSegments: []) == nil)
    }

    @Test func underThePrefix() {
        #expect(Route.match(path: "/ws/dashboard", prefixSegments: ["ws"], dashboard: true) == .dashboard(.page))
        #expect(Route.match(path: "/dashboard", prefixSegments: ["ws"], dashboard: true) == nil)
        #expect(Route.match(path: "/dashboard/api/nope", prefixSegments: [], dashboard: true) == nil)
    }

    @Test func methodsAndCSRF() {
        #expect(DashboardRoute.events(appID: "1").allowedMethods == ["POST"])
        #expect(DashboardRoute.events(appID: "1").changesState && DashboardRoute.logout.changesState)
        #expect(!DashboardRoute.login.changesState && !DashboardRoute.overview.changesState)
    }
}
