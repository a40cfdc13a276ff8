import NIOCore
import Reverb
import Testing

@Suite("Subscribe and unsubscribe (protocol.md §3, §4)")
struct SubscriptionTests {
    static let unauthorized =
        #"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"Connection is unauthorized\"}"}"#
    static let invalid = #"{"event":"pusher:error","data":"{\"code\":4200,\"message\":\"Invalid message format\"}"}"#

    @Test(
        "§15.11 public subscribe, data as object or as JSON string, gets the exact succeeded frame",
        arguments: [
            #"{"event":"pusher:subscribe","data":{"auth":"","channel":"test-channel"}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"test-channel"}}"#,
            #"{"event":"pusher:subscribe","data":"{\"channel\":\"test-channel\"}"}"#,
            #"{"event":"pusher:subscribe","data":{"auth":null,"channel":"test-channel","channel_data":null}}"#,
        ])
    func publicSubscribe(message: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: message)
            try await client.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"test-channel"}"#)
            try await client.sync()
        }
    }

    @Test(
        "§15.12 private subscribe signed per §4.3 succeeds, also with a wrong key part",
        arguments: [
            "reverb-key", "app-key", "",
        ])
    func privateSubscribe(keyPart: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribe("private-orders.1", auth: client.auth("private-orders.1", key: keyPart))
            try await client.expectText(
                #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"private-orders.1"}"#)
            try await client.sync()
        }
    }

    @Test("§15.12 the signature alone, without a key part, is accepted")
    func signatureWithoutKeyPart() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            let auth = client.auth("private-x")
            let signature = String(auth.drop { $0 != ":" }.dropFirst())
            try await client.subscribe("private-x", auth: signature)
            try await client.expectSubscribed("private-x")
        }
    }

    enum BadAuth: String, CaseIterable, Sendable {
        case invalid, missing, null, empty, uppercase, otherSocket, otherChannel, otherSecret
    }

    static func subscribeMessage(channel: String, badAuth: BadAuth, client: WebSocketTestClient) -> String {
        let good = client.auth(channel)
        let auth: String?
        switch badAuth {
        case .invalid: auth = jsonString("reverb-key:0123456789abcdef")
        case .missing: auth = nil
        case .null: auth = "null"
        case .empty: auth = #""""#
        case .uppercase: auth = jsonString("reverb-key:" + good.drop { $0 != ":" }.dropFirst().uppercased())
        case .otherSocket:
            auth = jsonString(
                ChannelAuthorization.auth(
                    key: "reverb-key", secret: "reverb-secret", socketID: "1.1", channel: channel))
        case .otherChannel: auth = jsonString(client.auth(channel + "x"))
        case .otherSecret: auth = jsonString(client.auth(channel, secret: "wrong"))
        }
        return #"{"event":"pusher:subscribe","data":{"# + (auth.map { #""auth":\#($0),"# } ?? "")
            + #""channel":"# + jsonString(channel) + "}}"
    }

    @Test("§15.13 bad private auth gets the exact 4009; socket usable", arguments: BadAuth.allCases)
    func privateUnauthorized(badAuth: BadAuth) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(
                text: Self.subscribeMessage(channel: "private-orders.1", badAuth: badAuth, client: client))
            try await client.expectText(Self.unauthorized)
            try await client.sync()
            try await client.subscribePublic("still-usable")
        }
    }

    @Test(
        "§15.14 the same 4009 for every signed channel type",
        arguments: [
            "private-cache-x", "presence-x", "presence-cache-x", "private-encrypted-x", "private-encrypted-cache-x",
        ])
    func signedTypesUnauthorized(channel: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            for badAuth in [BadAuth.invalid, .missing, .null] {
                var message = Self.subscribeMessage(channel: channel, badAuth: badAuth, client: client)
                if channel.hasPrefix("presence-") {
                    message = message.replacing(#""channel":"#, with: #""channel_data":"{\"user_id\":1}","channel":"#)
                }
                try await client.send(text: message)
                try await client.expectText(Self.unauthorized)
            }
            try await client.sync()
        }
    }

    struct FieldCase: Sendable, CustomStringConvertible {
        /// The message, `AUTH` standing for a correct signature over `channel` and `signedData`.
        var template: String
        var channel: String
        var signedData: String?
        var description: String { template }
    }

    static let fieldCases: [FieldCase] = [
        FieldCase(
            template:
                #"{"event":"pusher:subscribe","data":{"auth":"AUTH","channel_data":"Hello","channel":"private-x"}}"#,
            channel: "private-x", signedData: "Hello"),
        FieldCase(
            template:
                #"{"event":"pusher:subscribe","data":{"auth":"AUTH","channel_data":{"user_id":1},"channel":"private-x"}}"#,
            channel: "private-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":"AUTH","channel_data":5,"channel":"private-x"}}"#,
            channel: "private-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":"AUTH","channel_data":5,"channel":"presence-x"}}"#,
            channel: "presence-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":"AUTH","channel_data":"5","channel":"presence-x"}}"#,
            channel: "presence-x", signedData: "5"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":[],"channel":"private-x"}}"#, channel: "private-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":[],"channel":"public-x"}}"#, channel: "public-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"auth":5,"channel":"public-x"}}"#, channel: "public-x"),
        FieldCase(
            template: #"{"event":"pusher:subscribe","data":{"channel_data":"Hello","channel":"public-x"}}"#,
            channel: "public-x"),
        FieldCase(template: #"{"event":"pusher:subscribe","data":{"channel":5}}"#, channel: ""),
        FieldCase(template: #"{"event":"pusher:subscribe","data":{}}"#, channel: ""),
        FieldCase(template: #"{"event":"pusher:subscribe","data":"abc"}"#, channel: ""),
        FieldCase(template: #"{"event":"pusher:subscribe","data":5}"#, channel: ""),
        FieldCase(template: #"{"event":"pusher:subscribe"}"#, channel: ""),
    ]

    @Test("§15.15 channel_data \"Hello\", an object or 5, and auth [], get 4200", arguments: fieldCases)
    func fieldTypes(example: FieldCase) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            // The signature is correct, so only the field type is wrong.
            let message = example.template.replacing(
                "AUTH", with: client.auth(example.channel, channelData: example.signedData))
            try await client.send(text: message)
            try await client.expectText(Self.invalid)
            try await client.sync()
        }
    }

    @Test(
        "§15.16 invalid channel names get 4200",
        arguments: [
            "", "a b", "#x", "ü", String(repeating: "a", count: 201), "a/b", "a:b", "café", "tab\t",
        ])
    func invalidChannelName(name: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribe(name)
            try await client.expectText(Self.invalid)
            try await client.sync()
        }
    }

    @Test(
        "§15.16 a 200-character name and the whole charset are valid",
        arguments: [
            String(repeating: "a", count: 200), "-a-zA-Z0-9_=@,.;", "private", "presence", "cache",
        ])
    func validChannelName(name: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic(name)
            try await client.sync()
        }
    }

    @Test(
        "§15.17 privatefoo and cached-x are public: no auth, no cache_miss",
        arguments: ["privatefoo", "cached-x", "presencex", "private_x"])
    func prefixesNeedTheDash(channel: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic(channel)
            try await client.sync()
        }
    }

    @Test("§15.24 unsubscribe: no reply, later events not delivered; unknown channel: nothing")
    func unsubscribe() async throws {
        try await withTestServer { server in
            let listener = try await server.connect()
            let sender = try await server.connect()
            try await listener.subscribePublic("room")
            try await listener.subscribePublic("control")
            try await sender.subscribePublic("room")
            try await sender.subscribePublic("control")
            try await listener.unsubscribe("room")
            try await listener.unsubscribe("never-subscribed")
            try await listener.send(text: #"{"event":"pusher:unsubscribe","data":{"channel":"private-unknown"}}"#)
            try await listener.sync()
            try await sender.send(text: #"{"event":"client-after","channel":"room","data":{}}"#)
            try await sender.send(text: #"{"event":"client-marker","channel":"control","data":{}}"#)
            // Events to one channel keep their order: the marker is the first thing the listener sees.
            try await listener.expectText(#"{"event":"client-marker","channel":"control","data":{}}"#)
            try await listener.sync()
        }
    }

    @Test(
        "§4.5 unsubscribe without a string channel gets 4200",
        arguments: [
            #"{"event":"pusher:unsubscribe","data":{}}"#, #"{"event":"pusher:unsubscribe","data":{"channel":5}}"#,
            #"{"event":"pusher:unsubscribe"}"#,
        ])
    func unsubscribeInvalid(message: String) async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.send(text: message)
            try await client.expectError(4200, "Invalid message format")
        }
    }

    @Test("§15.25 re-subscribe to a held public or private channel gets succeeded again")
    func resubscribe() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            try await client.subscribePublic("again")
            try await client.subscribePublic("again")
            try await client.subscribePrivate("private-again")
            try await client.subscribePrivate("private-again")
            // A failed re-subscribe keeps the existing subscription.
            try await client.subscribe("private-again", auth: "reverb-key:bad")
            try await client.expectText(Self.unauthorized)
        }
    }
}
