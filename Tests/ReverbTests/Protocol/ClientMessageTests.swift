import Testing

@testable import Reverb

@Suite("Client message parsing (protocol.md §2, §4.1, §7.1)")
struct ClientMessageTests {
    private func parse(_ text: String) -> Result<ClientMessage, PusherError> {
        ClientMessage.parse(Array(text.utf8))
    }

    @Test(
        "malformed messages give 4200",
        arguments: [
            "not json", #"["x"]"#, "{}", #"{"event":123}"#, #"{"event":"pusher:foo"}"#, #"{"event":"pusher:signin"}"#,
            #"{"event":"pusher:ping","data":"abc"}"#, #"{"event":"pusher:ping","data":5}"#,
            #"{"event":"pusher:subscribe","data":{}}"#, #"{"event":"pusher:subscribe","data":{"channel":""}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"a b"}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"x","auth":[]}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"x","channel_data":"Hello"}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"x","channel_data":{}}}"#,
            #"{"event":"pusher:subscribe","data":{"channel":"x","channel_data":5}}"#,
            #"{"event":"pusher:unsubscribe","data":{}}"#, #"{"event":"client-x"}"#,
            #"{"event":"client-x","channel":"c","data":"abc"}"#, #"{"event":"client-x","channel":"c","data":5}"#,
            #"{"event":"client-x","channel":5}"#,
        ])
    func invalid(_ text: String) {
        #expect(parse(text) == .failure(.invalidMessageFormat))
    }

    @Test("ping with object, empty string or no data")
    func ping() {
        for text in [
            #"{"event":"pusher:ping","data":{}}"#, #"{"event":"pusher:ping","data":""}"#, #"{"event":"pusher:ping"}"#,
        ] {
            #expect(parse(text) == .success(.ping))
        }
    }

    @Test("subscribe data may be an object or a JSON string")
    func subscribe() {
        let expected = ClientMessage.subscribe(channel: "test-channel", auth: nil, channelData: nil)
        #expect(parse(#"{"event":"pusher:subscribe","data":{"channel":"test-channel"}}"#) == .success(expected))
        #expect(parse(#"{"event":"pusher:subscribe","data":"{\"channel\":\"test-channel\"}"}"#) == .success(expected))
        #expect(
            parse(
                #"{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:s","channel_data":"{\"user_id\":1}"}}"#
            )
                == .success(.subscribe(channel: "presence-x", auth: "k:s", channelData: #"{"user_id":1}"#)))
    }

    @Test("client events keep data as JSON; other events are ignored")
    func clientEvents() {
        #expect(
            parse(#"{"event":"client-x","channel":"c","data":"{\"a\":{}}"}"#)
                == .success(
                    .clientEvent(
                        name: "client-x", channel: "c", data: .object(JSONObject([("a", .object(JSONObject()))])))))
        #expect(
            parse(#"{"event":"client-x","channel":"c"}"#)
                == .success(.clientEvent(name: "client-x", channel: "c", data: nil)))
        #expect(parse(#"{"event":"foo","channel":"x"}"#) == .success(.ignored))
    }
}

@Suite("Channel names and kinds (protocol.md §3)")
struct ChannelNameTests {
    @Test(
        "valid and invalid names",
        arguments: [
            ("test-channel", true), ("private-orders.1", true), ("a=b@c,d.e;f_g", true), ("", false), ("a b", false),
            ("#x", false), ("ü", false), (String(repeating: "a", count: 200), true),
            (String(repeating: "a", count: 201), false),
        ])
    func names(_ name: String, _ valid: Bool) {
        #expect(ChannelName.isValid(name) == valid)
    }

    @Test("kinds by prefix, dash required")
    func kinds() {
        #expect(ChannelName.kind(of: "private-encrypted-cache-x") == .privateCache)
        #expect(ChannelName.kind(of: "private-encrypted-x") == .private)
        #expect(ChannelName.kind(of: "private-cache-x") == .privateCache)
        #expect(ChannelName.kind(of: "private-x") == .private)
        #expect(ChannelName.kind(of: "presence-cache-x") == .presenceCache)
        #expect(ChannelName.kind(of: "presence-x") == .presence)
        #expect(ChannelName.kind(of: "cache-x") == .cache)
        #expect(ChannelName.kind(of: "privatefoo") == .public)
        #expect(ChannelName.kind(of: "cached-x") == .public)
    }

    @Test("socket ids")
    func socketIDs() {
        for _ in 0..<1000 { #expect(SocketID.isValid(SocketID.random())) }
        #expect(!SocketID.isValid("01.2"))
        #expect(!SocketID.isValid("1.2.3"))
        #expect(!SocketID.isValid("1."))
    }
}

@Suite("Channel authorization signatures (protocol.md §4.3)")
struct ChannelAuthorizationTests {
    let secret = "7ad3773142a6692b25b8"

    @Test("spec vectors")
    func vectors() {
        #expect(
            ChannelAuthorization.auth(
                key: "278d425bdf160c739803", secret: secret, socketID: "1234.1234", channel: "private-foobar")
                == "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4")
        let data = #"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#
        #expect(
            ChannelAuthorization.auth(
                key: "278d425bdf160c739803", secret: secret, socketID: "1234.1234", channel: "presence-foobar",
                channelData: data)
                == "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80")
        #expect(
            ChannelAuthorization.verify(
                auth: "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80",
                secret: secret, socketID: "1234.1234", channel: "presence-foobar", channelData: data))
        #expect(
            Signature.hmacSHA256Hex(
                key: secret, message: #"1234.1234::user::{"id":"12345","user_info":{"name":"Mr. Channels"}}"#)
                == "abe963eb4a43a3393065608e9b0a2b9a57fb808546d6cdfe9b62511684afb82f")
    }

    @Test("key part unchecked; uppercase, missing and empty fail")
    func comparison() {
        let signature = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        func verify(_ auth: String?) -> Bool {
            ChannelAuthorization.verify(
                auth: auth, secret: secret, socketID: "1234.1234", channel: "private-foobar", channelData: nil)
        }
        #expect(verify("app-key:" + signature))
        #expect(verify(signature))
        #expect(!verify("k:" + signature.uppercased()))
        #expect(!verify(nil))
        #expect(!verify(""))
        #expect(!verify("k:" + String(signature.dropLast()) + "0"))
    }

    @Test("MD5 and constant-time comparison")
    func primitives() {
        #expect(Signature.md5Hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Signature.constantTimeEquals("abc", "abc"))
        #expect(!Signature.constantTimeEquals("abc", "abd"))
        #expect(!Signature.constantTimeEquals("abc", "abcd"))
    }
}
