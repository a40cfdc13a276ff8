import Testing

@testable import Reverb

/// `metrics.*` and the apps' `webhooks` as loaded (`http-api.md` §8, `config.md` §4).
@Suite struct ConfigurationObservabilityTests {
    @Test func metricsSettings() throws {
        let configuration = try loadConfiguration(
            environment: environmentAppCredentials.merging([
                "REVERB_METRICS_ENABLED": "yes", "REVERB_METRICS_PORT": "9100", "REVERB_METRICS_PREFIX": "(empty)",
            ]) { $1 },
            file: #"{"servers": {"reverb": {"metrics": {"token": "t", "host": "0.0.0.0", "prefix": "x_"}}}}"#)
        #expect(
            configuration.metrics
                == MetricsConfiguration(enabled: true, token: "t", port: 9100, host: "0.0.0.0", prefix: ""))
    }

    @Test func dashboardSettings() throws {
        #expect(try loadConfiguration(environment: environmentAppCredentials).dashboard == DashboardConfiguration())
        let configuration = try loadConfiguration(
            environment: environmentAppCredentials.merging(["REVERB_DASHBOARD_ENABLED": "true"]) { $1 },
            file: #"{"servers": {"reverb": {"dashboard": {"enabled": false, "password": "correct horse"}}}}"#)
        #expect(configuration.dashboard == DashboardConfiguration(enabled: true, password: "correct horse"))
    }

    @Test func webhooksFromTheFile() throws {
        let configuration = try loadConfiguration(
            file: #"""
                {"apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "webhooks": [
                  {"url": "https://hooks.test/pusher?a=1", "event_types": ["channel_occupied", "subscription_count"],
                   "headers": {"X-Env": "prod"}, "filter": {"channel_name_starts_with": "presence-"}},
                  {"url": "http://other.test"}
                ]}]}}
                """#)
        #expect(
            configuration.apps[0].webhooks == [
                Webhook(
                    url: "https://hooks.test/pusher?a=1", eventTypes: [.channelOccupied, .subscriptionCount],
                    headers: ["X-Env": "prod"], channelNameStartsWith: "presence-"),
                Webhook(url: "http://other.test"),
            ])
        #expect(!Webhook.EventType.defaults.contains(.subscriptionCount))
        #expect(Webhook.EventType.defaults.count == 6)
    }

    @Test func environmentWebhookReplacesTheFileList() throws {
        let configuration = try loadConfiguration(
            environment: environmentAppCredentials.merging([
                "REVERB_APP_WEBHOOK_URL": "https://env.test/hook",
                "REVERB_APP_WEBHOOK_EVENTS": "cache_miss, client_event",
            ]) { $1 },
            file:
                #"{"apps": {"apps": [{"app_id": "1", "key": "k", "secret": "s", "webhooks": [{"url": "http://f.test"}]}]}}"#
        )
        #expect(
            configuration.apps[0].webhooks == [
                Webhook(url: "https://env.test/hook", eventTypes: [.cacheMiss, .clientEvent])
            ])
    }

    @Test(arguments: [
        ("https://h.test", true), ("HTTP://h.test:8080/x?y#z", true), ("http://user@h.test", true),
        ("hooks.example.com", false), ("ftp://h.test", false), ("http://", false), ("http:///x", false),
        ("http://h .test", false), ("https://:80/", false),
    ])
    func urls(_ url: String, _ accepted: Bool) {
        #expect(Webhook.isHTTPURL(url) == accepted)
    }

    @Test func filterRules() {
        let both = Webhook(url: "http://h", channelNameStartsWith: "presence-", channelNameEndsWith: "-chat")
        #expect(both.accepts(.channelOccupied, channel: "presence-team-chat"))
        #expect(!both.accepts(.channelOccupied, channel: "presence-team"))
        #expect(!both.accepts(.channelOccupied, channel: "private-team-chat"))
        #expect(!both.accepts(.subscriptionCount, channel: "presence-team-chat"))
        let none = Webhook(url: "http://h", eventTypes: [.cacheMiss])
        #expect(none.accepts(.cacheMiss, channel: "anything"))
        #expect(!none.accepts(.clientEvent, channel: "anything"))
    }
}
