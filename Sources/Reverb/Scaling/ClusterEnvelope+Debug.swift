import NIOCore

/// The dashboard's bus messages (`ClusterNode+Debug`).
extension ClusterEnvelope {
    static func debugWatch(node: String, apps: [String]) -> ByteBuffer {
        var buffer = begin(type: "debug_watch", node: node)
        buffer.writeStaticString(#","apps":"#)
        JSONWriter.write(.array(apps.map(JSONValue.string)), into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// `event` is the event's JSON text, as the consoles receive it.
    static func debugEvent(node: String, app: String, event: String) -> ByteBuffer {
        var buffer = begin(type: "debug_event", node: node, capacity: event.utf8.count + 128)
        field("app", app, into: &buffer)
        buffer.writeStaticString(#","event":"#)
        buffer.writeString(event)
        buffer.writeStaticString("}")
        return buffer
    }

    static func dashboardStats(node: String, stats: JSONObject) -> ByteBuffer {
        var buffer = begin(type: "dashboard_stats", node: node, capacity: 256)
        buffer.writeStaticString(#","stats":"#)
        JSONWriter.write(.object(stats), into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }
}
