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
        private let signer: RequestSigner
        private var body = ByteBuffer()

        init(target: BenchTarget, app: BenchApp, channel: String, payloadSize: Int) {
            self.app = app
            self.path = "\(target.prefix)/apps/\(app.id)/events"
            self.requestLinePrefix = "POST \(path)?"
            self.hostHeader = "\(target.host):\(target.port)"
            self.bodyPrefix = #"{"name":"bench","channel":"\#(channel)","data":""#
            self.payloadSize = payloadSize
            self.signer = RequestSigner(key: app.key, secret: app.secret)
        }

        mutating func write(sequence: UInt64, timestamp: UInt64, into buffer: inout ByteBuffer) {
            body.clear()
            body.writeString(bodyPrefix)
            PayloadTimestamp.write(timestamp: timestamp, sequence: sequence, size: payloadSize, into: &body)
            body.writeString(#""}"#)
            buffer.writeString(requestLinePrefix)
            buffer.writeString(
                signer.signedQuery(
                    method: "POST", path: path, body: body, timestamp: Int64(ResourceUsage.unixSeconds())))
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
