import NIOCore
import Reverb

/// Builds one publish request per event, with the send time inside the data string.
enum EventRequestEncoder {
    /// A signed `POST {prefix}/apps/{id}/events` (`http-api.md` §2, §3.1), keep-alive.
    case reverb(ReverbEvents)
    /// `PUBLISH channel data`.
    case redis(channel: String, payloadSize: Int)

    struct ReverbEvents {
        let app: BenchApp
        let path: String
        let requestLinePrefix: String
        let hostHeader: String
        let bodyPrefix: String
        let payloadSize: Int
        private let secret: [UInt8]
        private var body = ByteBuffer()
        private var toSign = ByteBuffer()
        private var timestampSecond: Int = 0
        private var timestampString = ""

        init(target: BenchTarget, app: BenchApp, channel: String, payloadSize: Int) {
            self.app = app
            self.path = "\(target.prefix)/apps/\(app.id)/events"
            self.requestLinePrefix = "POST \(path)?"
            self.hostHeader = "\(target.host):\(target.port)"
            self.bodyPrefix = #"{"name":"bench","channel":"\#(channel)","data":""#
            self.payloadSize = payloadSize
            self.secret = Array(app.secret.utf8)
        }

        mutating func write(sequence: UInt64, timestamp: UInt64, into buffer: inout ByteBuffer) {
            body.clear()
            body.writeString(bodyPrefix)
            PayloadTimestamp.write(timestamp: timestamp, sequence: sequence, size: payloadSize, into: &body)
            body.writeString(#""}"#)
            let md5 = body.withUnsafeReadableBytes { Signature.md5Hex($0) }
            let second = Int(ResourceUsage.unixSeconds())
            if second != timestampSecond {
                timestampSecond = second
                timestampString = String(second)
            }
            // Parameters already in byte order: auth_key, auth_timestamp, auth_version, body_md5.
            toSign.clear()
            toSign.writeString("POST\n")
            toSign.writeString(path)
            toSign.writeString("\n")
            let queryStart = toSign.writerIndex
            toSign.writeString("auth_key=")
            toSign.writeString(app.key)
            toSign.writeString("&auth_timestamp=")
            toSign.writeString(timestampString)
            toSign.writeString("&auth_version=1.0&body_md5=")
            toSign.writeString(md5)
            let signature = secret.withUnsafeBytes { key in
                toSign.withUnsafeReadableBytes { Signature.hmacSHA256Hex(key: key, message: $0) }
            }
            buffer.writeString(requestLinePrefix)
            var query = toSign.getSlice(at: queryStart, length: toSign.writerIndex - queryStart)!
            buffer.writeBuffer(&query)
            buffer.writeString("&auth_signature=")
            buffer.writeString(signature)
            buffer.writeString(" HTTP/1.1\r\nHost: ")
            buffer.writeString(hostHeader)
            buffer.writeString("\r\nContent-Type: application/json\r\nContent-Length: ")
            buffer.writeString(String(body.readableBytes))
            buffer.writeString("\r\n\r\n")
            var bodyCopy = body
            buffer.writeBuffer(&bodyCopy)
        }
    }

    mutating func write(sequence: UInt64, timestamp: UInt64, into buffer: inout ByteBuffer) {
        switch self {
        case .reverb(var events):
            self = .redis(channel: "", payloadSize: 0)  // keep `events` uniquely referenced while writing
            events.write(sequence: sequence, timestamp: timestamp, into: &buffer)
            self = .reverb(events)
        case .redis(let channel, let payloadSize):
            buffer.writeString("*3\r\n$7\r\nPUBLISH\r\n$\(channel.utf8.count)\r\n\(channel)\r\n$\(payloadSize)\r\n")
            PayloadTimestamp.write(timestamp: timestamp, sequence: sequence, size: payloadSize, into: &buffer)
            buffer.writeString("\r\n")
        }
    }

    var responseKind: PublisherHandler.ResponseKind {
        switch self {
        case .reverb: .http
        case .redis: .resp
        }
    }
}
